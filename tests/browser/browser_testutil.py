"""Helpers shared by the browser tests."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save the page as seen (the viewport unless full_page) to artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    try:  # players show a loading spinner until a frame is decoded; a seek asks for one
        page.evaluate("document.querySelectorAll('video').forEach((v) => { if (v.readyState < 2) v.currentTime = 0.04; })")
        page.wait_for_function("[...document.querySelectorAll('video')].every((v) => v.readyState >= 2)", timeout=5_000)
    except Exception:
        pass  # a picture with a spinner is still a picture
    page.screenshot(path=str(path), animations="disabled", full_page=full_page)
    return path


def sign_in(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    assert_inputs_labelled(page)
    page.locator('input[name="login"]').fill(email)
    page.locator('input[name="password"]').fill(password)
    with page.expect_navigation():
        page.locator('main form button[type="submit"]').first.click()
    if "/accounts/login" in page.url:
        (SCREENSHOTS.parent / "sign-in-failed.html").write_text(page.content())
    assert "/accounts/login" not in page.url, f"sign-in failed as {email}"


# Every form control a person fills in must have an accessible name: a <label for>, a wrapping
# <label>, aria-label or aria-labelledby.
UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea')].filter((el) => {
  if (['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type)) return false;
  if (el.closest('[hidden]')) return false;
  if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
  if (el.closest('label')) return false;
  if (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) return false;
  return true;
}).map((el) => el.outerHTML.slice(0, 160))"""


def assert_inputs_labelled(page) -> None:
    unlabelled = page.evaluate(UNLABELLED_JS)
    assert unlabelled == [], f"{page.url}: controls without a label: {unlabelled}"


def assert_no_horizontal_overflow(page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{page.url}: page is {widths[0]} px wide in a {widths[1]} px viewport"


# Builds a DataTransfer holding real File objects, so a synthetic "drop" event carries files
# exactly as a drag from the desktop would.
DATA_TRANSFER_JS = """(files) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  return dt;
}"""


def drop_files(page, selector: str, paths, mime: str) -> None:
    """Drag files from "the desktop" onto the element at `selector`."""
    import base64

    payload = [{"name": p.name, "type": mime, "b64": base64.b64encode(Path(p).read_bytes()).decode()} for p in paths]
    data_transfer = page.evaluate_handle(DATA_TRANSFER_JS, payload)
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": data_transfer})


# Records every value the progress bars take (attribute changes made by the websocket code).
BAR_RECORDER_JS = """(() => {
  window.__bars = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target;
      if (!el.matches('[data-bar], [data-overall]')) continue;
      const card = el.closest('[data-render]');
      // The badge is updated before the bar, so this is the status that came with the value;
      // whether the card's download and retry showed is read at the same moment.
      const shown = (sel) => { const b = card && card.querySelector(sel); return !!(b && b.checkVisibility()); };
      window.__bars.push({ bar: card ? card.dataset.render : 'overall', value: Number(el.getAttribute('aria-valuenow')),
                           status: card ? card.querySelector('.badge').dataset.status : null,
                           download: shown('[data-download]'), retry: shown('[data-retry]') });
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
})();"""

# Resolves with the <video>'s duration once its metadata has loaded.
VIDEO_DURATION_JS = """(video) => new Promise((resolve, reject) => {
  if (video.readyState >= 1) return resolve(video.duration);
  video.addEventListener('loadedmetadata', () => resolve(video.duration), { once: true });
  video.addEventListener('error', () => reject(new Error('media error ' + (video.error && video.error.code))), { once: true });
  video.load();
})"""

# Each <video> of the page once its metadata has loaded: its box, the video's own size, and
# whether an ancestor's box cuts it off (the parent of a player is the one that could crop it).
PLAYER_SHAPES_JS = """async () => {
  const out = [];
  // The players on show (a closed <dialog>'s empty players are not).
  for (const v of [...document.querySelectorAll('video')].filter((el) => el.getAttribute('src') && el.checkVisibility())) {
    if (v.readyState < 1) {
      v.preload = 'metadata';
      await new Promise((resolve, reject) => {
        v.addEventListener('loadedmetadata', resolve, { once: true });
        v.addEventListener('error', () => reject(new Error('media error on ' + v.currentSrc)), { once: true });
        setTimeout(() => reject(new Error(`no metadata within 15 s: ${v.currentSrc} `
                                          + `(readyState ${v.readyState}, networkState ${v.networkState})`)), 15000);
        v.load();
      });
    }
    const r = v.getBoundingClientRect(), box = v.parentElement.getBoundingClientRect();
    out.push({ src: v.currentSrc, w: r.width, h: r.height, vw: v.videoWidth, vh: v.videoHeight,
               fit: getComputedStyle(v).objectFit, viewport: window.innerHeight,
               clipped: r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1 });
  }
  return out;
}"""


def assert_players_keep_shape(page, *, count: int, max_height_fraction: float = 0.8) -> list[dict]:
    """Every player shows its whole video in the video's own aspect ratio, within a max height."""
    shapes = page.evaluate(PLAYER_SHAPES_JS)
    assert len(shapes) == count, shapes
    for s in shapes:
        ratio = s["vw"] / s["vh"]
        assert abs(s["w"] / s["h"] - ratio) < 0.03 * ratio, f"{page.url}: player {s['w']:.0f}x{s['h']:.0f} for a {s['vw']}x{s['vh']} video"
        assert not s["clipped"], f"{page.url}: the player's box is cut off: {s}"
        assert 100 < s["h"] <= max_height_fraction * s["viewport"] + 1, f"{page.url}: player height {s['h']:.0f}"
    return shapes
