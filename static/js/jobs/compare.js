// Job page: a finished video beside its template, in step. The result's own controls drive
// both players; the template plays muted and starts again from the top when it is shorter.
const dialog = document.querySelector("[data-compare-dialog]");
if (dialog) {
  const tpl = dialog.querySelector("[data-compare-template]");
  const out = dialog.querySelector("[data-compare-output]");
  const title = dialog.querySelector("[data-compare-title]");

  const target = () => (tpl.duration ? out.currentTime % tpl.duration : out.currentTime);
  const sync = (force) => {
    if (!tpl.duration) return;
    if (force || Math.abs(tpl.currentTime - target()) > 0.15) tpl.currentTime = target();
  };
  out.addEventListener("play", () => { sync(true); tpl.play().catch(() => {}); });
  out.addEventListener("pause", () => { tpl.pause(); sync(true); });
  out.addEventListener("ended", () => tpl.pause());
  out.addEventListener("seeked", () => sync(true));
  out.addEventListener("timeupdate", () => sync(false));
  out.addEventListener("ratechange", () => { tpl.playbackRate = out.playbackRate; });
  tpl.addEventListener("ended", () => { if (!out.paused) { tpl.currentTime = 0; tpl.play().catch(() => {}); } });

  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-compare]");
    if (!button) return;
    const card = button.closest("[data-render]");
    const video = card.querySelector("[data-player] video");
    if (!video) return;
    title.textContent = card.querySelector("h3").textContent;
    for (const [el, src] of [[tpl, card.dataset.templateVideo], [out, video.currentSrc || video.src]]) {
      el.src = src;
      if (video.width) { el.width = video.width; el.height = video.height; }
    }
    dialog.showModal();
  });
  const close = () => { out.pause(); tpl.pause(); dialog.close(); };
  dialog.querySelector("[data-compare-close]").addEventListener("click", close);
  dialog.addEventListener("close", () => { out.pause(); tpl.pause(); });
}
