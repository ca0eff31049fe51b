"""Issue 14 in a real browser: what a first-time user trips over (share passwords, players,
drag-and-drop, Chinese live updates, errors, phone width...)."""
from __future__ import annotations

import re

import pytest
from browser_testutil import (
    DESKTOP,
    PHONE,
    VIDEO_DURATION_JS,
    assert_no_horizontal_overflow,
    assert_players_keep_shape,
    drop_files,
    screenshot,
    sign_in,
)
from testutil import cut_audio

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r"/jobs/[0-9a-f-]{36}/$")


def in_thread(fn):
    """Run `fn` as a worker would: in a thread of its own (Playwright's event loop owns this
    one, and the channel layer's async_to_sync refuses to run inside it)."""
    import threading

    from django.db import connections

    errors = []

    def run():
        try:
            fn()
        except BaseException as e:  # re-raised in the test
            errors.append(e)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


def test_password_share_link_opens_with_the_right_password_only(live, new_page, cast, finished_job, media_dir):
    from jobs.sharing import sharelink_create

    job = finished_job([media_dir / "face_square_1.mp4"], title="Protected launch")
    _, token = sharelink_create(team=cast.acme, created_by=cast.alice, job=job, password="open-sesame-7")
    guest = new_page()
    response = guest.goto(f"/s/{token}/")
    assert response.status == 200 and guest.locator("video").count() == 0
    screenshot(guest, "share-password")

    guest.locator("#share-password").fill("wrong-password")
    with guest.expect_navigation() as nav:
        guest.get_by_role("button", name="View").click()
    assert nav.value.status == 403  # the view's "wrong password", not a CSRF refusal
    assert guest.get_by_role("alert").inner_text() == "That password is not right."
    assert guest.locator("video").count() == 0

    guest.locator("#share-password").fill("open-sesame-7")
    with guest.expect_navigation():
        guest.get_by_role("button", name="View").click()
    assert guest.locator("h1").inner_text() == "Protected launch"
    assert guest.locator("video").first.evaluate(VIDEO_DURATION_JS) > 1.0
    # Other sites still get no referrer from the share page.
    assert guest.locator('meta[name="referrer"]').get_attribute("content") == "same-origin"


def test_players_take_the_videos_own_shape(live, new_page, cast, finished_job, media_dir, portrait_h264):
    from jobs.sharing import sharelink_create

    job = finished_job([media_dir / "face_square_2.mp4", portrait_h264], title="Shapes")
    _, token = sharelink_create(team=cast.acme, created_by=cast.alice, job=job)
    portrait = job.renders.get(template_name=portrait_h264.stem).template
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    for path, count, name in ((f"/jobs/{job.pk}/", 2, "job"), ("/gallery/", 2, "gallery"),
                              (f"/templates/{portrait.pk}/", 1, "template"), (f"/s/{token}/", 2, "share")):
        page.goto(path)
        shapes = assert_players_keep_shape(page, count=count)
        assert {(s["vw"], s["vh"]) for s in shapes} >= {(1080, 1920)}, shapes
        screenshot(page, f"players-{name}", full_page=True)


def test_dropping_audio_on_new_batch_fills_the_input_and_starts(live, new_page, cast, finished_job, media_dir, tmp_path):
    from jobs import services
    from jobs.models import Job

    finished_job([media_dir / "face_square_3.mp4"])  # a ready template to pick
    speech = cut_audio(media_dir / "speech_en_1.wav", tmp_path / "dropped speech.wav", 1.0)
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/jobs/new/")
    drop_files(page, "[data-dropzone]", [speech], "audio/wav")
    assert page.locator('input[name="audio"]').evaluate("(i) => i.files.length && i.files[0].name") == "dropped speech.wav"
    page.locator('input[name="templates"]').first.check()
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(JOB_URL, timeout=30_000)
    job = Job.objects.get(audio_filename="dropped speech.wav")
    services.job_cancel(job=job, user=cast.alice)  # the page is what is tested, not the render


ERROR_RED = "rgb(180, 35, 24)"  # --error


def test_library_upload_error_stays_and_cards_follow_preparation_live(live, new_page, cast, media_dir, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video " * 200)
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/templates/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    drop_files(page, "[data-dropzone]", [media_dir / "face_square_3.mp4", broken], "video/mp4")
    card = page.locator(".template-card", has_text="face_square_3")
    card.wait_for(timeout=30_000)
    error = page.locator(".upload-item.is-error [role=alert]")
    error.wait_for(timeout=30_000)
    assert "broken.mp4" in error.inner_text()
    page.wait_for_timeout(3000)
    assert error.is_visible() and page.evaluate("window.__sameDocument") is True
    assert page.locator(".upload-item.is-error .progress").count() == 0  # no full "success" bar above it
    assert error.evaluate("(el) => getComputedStyle(el).color") == ERROR_RED
    # Preparation runs on the worker; the card turns "ready" without a reload.
    card.locator(".badge-ok").wait_for(timeout=180_000)
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "templates-upload-error", full_page=True)
    error.locator("[data-dismiss]").click()
    assert page.locator(".upload-item.is-error").count() == 0


def test_live_updates_speak_the_viewers_language(live, new_page, cast, finished_job, media_dir):
    from jobs import progress, services
    from jobs.models import Job, Render

    job = finished_job([media_dir / "face_square_1.mp4", media_dir / "face_square_2.mp4"], title="直播")
    done, running = job.renders.order_by("template_name")
    Render.objects.filter(pk=running.pk).update(status="rendering", progress=0.4, output="", finished=None)
    Job.objects.filter(pk=job.pk).update(status="running", finished=None)
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/")
    page.select_option("#language-select", "zh-hans")
    page.wait_for_selector("html[lang='zh-hans']")
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.goto(f"/jobs/{job.pk}/")
    card = page.locator(f'[data-render="{running.pk}"]')
    page.wait_for_function("(id) => document.querySelector(`[data-render='${id}'] .badge`).dataset.status === 'rendering'",
                           arg=str(running.pk))  # the snapshot came
    # What a worker does (in English): end one render, publish the other's quality report.
    def worker_side():
        services.render_fail(render=Render.objects.get(pk=running.pk), code="no_face",
                             message="No face was found in the template video.")
        Render.objects.filter(pk=done.pk).update(quality={"face_fraction": 0.5, "sync_score": 0.1, "sync_z": 0.3})
        progress.render_publish(Render.objects.get(pk=done.pk))

    in_thread(worker_side)
    card.locator('.badge[data-status="failed"]').wait_for()
    assert card.locator(".badge").inner_text() == "失败"
    assert card.locator("[data-error]").inner_text() == "模板视频中未找到人脸。"
    notes = page.locator(f'[data-render="{done.pk}"] [data-notes] li')
    notes.first.wait_for()
    assert notes.all_inner_texts() == ["50 % 的帧中丢失人脸", "口型同步效果较弱"]
    notes.nth(1).locator("summary").click()  # what was measured, and what usually helps
    assert "露出牙齿" in notes.nth(1).inner_text() and "0.3" in notes.nth(1).inner_text()
    page.wait_for_function("document.querySelector('p.muted > .badge').dataset.status === 'partial'")
    assert page.locator("p.muted > .badge").inner_text() == "已完成（有失败）"
    assert not page.locator("[data-cancel-job]").is_visible()  # a finished batch has nothing to cancel
    english = [f for f in frames if "No face was found" in f or "failed\"" in f and "status_label\": \"failed" in f]
    assert english == [], english[:2]
    screenshot(page, "job-live-zh-hans")


def test_hevc_template_page_explains_then_plays_the_preview(live, new_page, cast, finished_job, media_dir):
    from jobs import previews
    from jobs.models import Template

    job = finished_job([media_dir / "portrait_hevc_1080x1920.mp4"])
    template = job.renders.get().template
    Template.objects.filter(pk=template.pk).update(prep_status="running")  # the prep queue is at it
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto(f"/templates/{template.pk}/")
    assert page.locator(".player video").count() == 0
    assert "a smaller preview is being made" in page.locator("[data-preview-note]").inner_text()
    previews.template_preview_ensure(template)
    page.reload()
    video = page.locator(".player video")
    assert video.evaluate(VIDEO_DURATION_JS) > 9
    assert video.evaluate("(v) => [v.videoWidth, v.videoHeight]") == [404, 720]  # decoded frames, not only the sound
    assert_players_keep_shape(page, count=1)
    screenshot(page, "template-hevc-preview")


# Pairs of header items drawn on one line that overlap or touch (less than 6 px apart).
HEADER_CROWDING_JS = """() => {
  const items = [...document.querySelectorAll('.site-header .brand, .site-header .nav-links, .site-header .team-switcher select,'
                   + ' .site-header .menu-button, .site-header .nav-toggle, .site-header .language-switcher select')]
    .filter((el) => el.offsetParent !== null)
    .map((el) => ({ el: el.textContent.trim().slice(0, 20) || el.className, r: el.getBoundingClientRect() }));
  const bad = [];
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const a = items[i].r, b = items[j].r;
    const sameLine = a.top < b.bottom && b.top < a.bottom;
    const gap = Math.max(b.left - a.right, a.left - b.right);
    if (sameLine && gap < 6) bad.push(`${items[i].el} | ${items[j].el} (${gap.toFixed(0)} px)`);
  }
  return bad;
}"""


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1000, "height": 800}, DESKTOP], ids=["390", "1000", "1280"])
def test_job_page_fits_a_phone_and_the_header_never_runs_together(live, new_page, cast, finished_job, media_dir, viewport):
    from accounts.models import Membership, Team
    from jobs.sharing import sharelink_create

    long_team = Team.objects.create(name="Acme Worldwide Communications and Training", slug="acme-worldwide")
    Membership.objects.create(team=long_team, user=cast.alice, role="owner")
    job = finished_job([media_dir / "face_square_1.mp4", media_dir / "face_square_2.mp4"], title="Phone check")
    for r in job.renders.all():
        sharelink_create(team=cast.acme, created_by=cast.alice, render=r, password="pw-12345678")
    phone = viewport is PHONE
    page = new_page(viewport=viewport, is_mobile=phone, has_touch=phone)
    sign_in(page, "alice@example.com", cast.password)
    page.goto(f"/jobs/{job.pk}/")
    assert_no_horizontal_overflow(page)
    assert page.evaluate(HEADER_CROWDING_JS) == []
    if phone:
        page.locator(".nav-toggle").click()
        assert page.evaluate(HEADER_CROWDING_JS) == []
        assert_no_horizontal_overflow(page)
    screenshot(page, f"job-header-{viewport['width']}", full_page=True)


def test_copy_button_beside_a_new_share_link(live, new_page, cast, finished_job, media_dir):
    job = finished_job([media_dir / "face_square_3.mp4"], title="Copy me")
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    sign_in(page, "alice@example.com", cast.password)
    page.goto(f"/jobs/{job.pk}/")
    page.get_by_role("button", name="Create link").click()
    url = page.locator("#share-url").input_value()
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    screenshot(page, "share-created")


def test_a_first_run_explains_the_product_and_offers_the_samples(live, new_page, cast):
    from jobs import services
    from jobs.models import Job

    visitor = new_page()
    visitor.goto("/")
    assert "/accounts/login" not in visitor.url
    assert visitor.locator("h1").inner_text() == "One recording, many presenters"
    assert visitor.get_by_role("link", name="Sign in").first.is_visible()
    screenshot(visitor, "welcome")

    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    steps = page.locator("[data-first-steps]")
    assert steps.get_by_role("link", name="Upload presenter videos").is_visible()
    screenshot(page, "dashboard-first-steps")
    steps.get_by_role("button", name="Try the samples").click()
    page.wait_for_url("**/jobs/new/?sample=1")
    assert page.locator('input[name="templates"]:checked').count() == 2
    assert page.locator('input[name="sample_voice"]').is_checked()
    screenshot(page, "new-batch-samples")
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(JOB_URL, timeout=30_000)
    assert page.locator("h1").inner_text() == "Sample batch"
    job = Job.objects.get(title="Sample batch")
    assert job.audio_filename == "voice.wav" and job.renders.count() == 2
    services.job_cancel(job=job, user=cast.alice)  # the flow is what is tested, not the render


def test_new_batch_shows_cost_against_quota_and_a_finish_time(live, new_page, cast, finished_job, media_dir, tmp_path):
    from datetime import timedelta

    from jobs.models import Render

    job = finished_job([media_dir / "face_square_3.mp4", media_dir / "face_square_2.mp4"])
    for r in job.renders.all():  # the team's recent pace: 10 s of work per 5 s of video
        Render.objects.filter(pk=r.pk).update(started=r.finished - timedelta(seconds=10), output_duration=5.0)
    speech = cut_audio(media_dir / "speech_en_1.wav", tmp_path / "speech_3s.wav", 3.0)
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/jobs/new/")
    estimate = page.locator("[data-estimate]")
    assert "Choose an audio file and templates" in estimate.inner_text()
    page.set_input_files('input[name="audio"]', str(speech))
    page.get_by_role("button", name="Select all").click()
    cost = estimate.locator("[data-estimate-cost]")
    page.wait_for_function("document.querySelector('[data-estimate-cost]').textContent.includes('render minutes')")
    # 3 s of audio on 2 templates = 6 s = 0.1 render minutes, of the plan's 600.
    assert cost.inner_text() == "This batch uses about 0.1 render minutes of the 600 your team has left this month."
    assert "Estimated ready at" in estimate.inner_text() and "in about 1 min" in estimate.inner_text()
    screenshot(page, "new-batch-estimate", full_page=True)

    cast.acme.render_minutes_limit = 0.05  # 3 s: less than this batch needs
    cast.acme.save()
    page.reload()
    page.set_input_files('input[name="audio"]', str(speech))
    page.get_by_role("button", name="Select all").click()
    page.wait_for_function("document.querySelector('[data-estimate-cost]').textContent.includes('refused')")
    assert "alert-error" in cost.get_attribute("class")


def test_compare_a_result_with_its_template_in_step(live, new_page, cast, finished_job, media_dir):
    job = finished_job([media_dir / "face_square_1.mp4"], title="Compare")
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto(f"/jobs/{job.pk}/")
    page.get_by_role("button", name="Compare with the template").click()
    dialog = page.locator("[data-compare-dialog]")
    assert dialog.is_visible()
    tpl, out = dialog.locator("[data-compare-template]"), dialog.locator("[data-compare-output]")
    assert tpl.evaluate(VIDEO_DURATION_JS) > 5 and out.evaluate(VIDEO_DURATION_JS) > 5
    out.evaluate("(v) => { v.muted = true; return v.play(); }")
    page.wait_for_function("document.querySelector('[data-compare-output]').currentTime > 1.0", timeout=15_000)
    times = page.evaluate("[document.querySelector('[data-compare-template]').currentTime, "
                          "document.querySelector('[data-compare-output]').currentTime]")
    assert times[0] > 0.8 and abs(times[0] - times[1]) < 0.3, times
    out.evaluate("(v) => new Promise((resolve) => { v.pause(); "
                 "v.addEventListener('seeked', resolve, { once: true }); v.currentTime = 3.0; })")
    page.wait_for_function("Math.abs(document.querySelector('[data-compare-template]').currentTime - 3.0) < 0.2")
    screenshot(page, "job-compare")
    dialog.get_by_role("button", name="Close").click()
    assert not dialog.is_visible()


def test_gallery_filters_and_bulk_zip_share_delete(live, new_page, cast, finished_job, media_dir, tmp_path):
    import zipfile

    from jobs.models import Render

    finished_job([media_dir / "face_square_1.mp4", media_dir / "face_square_2.mp4"], title="Spring launch")
    finished_job([media_dir / "face_square_3.mp4"], title="Autumn promo")
    page = new_page()
    page.on("dialog", lambda d: d.accept())
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/gallery/")
    assert page.locator("[data-gallery-item]").count() == 3
    page.locator("#id_q").fill("autumn")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("[data-gallery-item] label").all_inner_texts() == ["face_square_3"]
    page.goto("/gallery/")
    page.select_option("#id_template", label="face_square_2")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("[data-gallery-item] label").all_inner_texts() == ["face_square_2"]

    page.goto("/gallery/?q=spring")
    assert page.get_by_role("button", name="Download selected (zip)").is_disabled()
    page.get_by_role("button", name="Select all").click()
    assert page.locator("[data-bulk-count]").inner_text() == "2 selected"
    with page.expect_download() as download:
        page.get_by_role("button", name="Download selected (zip)").click()
    archive = tmp_path / "selected.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["face_square_1.mp4", "face_square_2.mp4"]

    page.get_by_role("button", name="Share selected").click()
    assert page.locator("h1").inner_text() == "2 share links created"
    urls = [page.locator(f"#share-url-{i}").input_value() for i in (1, 2)]
    assert all("/s/" in u for u in urls) and urls[0] != urls[1]

    page.goto("/gallery/?q=spring")
    page.locator("[data-gallery-item]", has_text="face_square_1").locator('input[name="render"]').check()
    page.get_by_role("button", name="Delete selected").click()
    page.wait_for_url("**/gallery/")
    assert "1 video deleted." in page.locator("#messages").inner_text()
    assert sorted(page.locator("[data-gallery-item] label").all_inner_texts()) == ["face_square_2", "face_square_3"]
    assert Render.objects.filter(template_name="face_square_1").get().status == "expired"
    screenshot(page, "gallery-bulk", full_page=True)

    viewer = new_page()
    sign_in(viewer, "vera@example.com", cast.password)
    viewer.goto("/gallery/")
    assert viewer.get_by_role("button", name="Delete selected").count() == 0


def test_uploading_the_same_video_again_offers_the_existing_template(live, new_page, cast, media_dir, tmp_path):
    import shutil

    from jobs.models import Template

    copy = tmp_path / "same bytes, other name.mp4"
    shutil.copyfile(media_dir / "face_square_2.mp4", copy)
    page = new_page()
    sign_in(page, "alice@example.com", cast.password)
    page.goto("/templates/")
    drop_files(page, "[data-dropzone]", [media_dir / "face_square_2.mp4"], "video/mp4")
    page.locator(".template-card").wait_for(timeout=30_000)
    drop_files(page, "[data-dropzone]", [copy], "video/mp4")
    offer = page.locator(".upload-item.is-duplicate a")
    offer.wait_for(timeout=30_000)
    assert offer.inner_text() == "Already in the library as “face_square_2”."
    assert Template.objects.filter(team=cast.acme).count() == 1 and page.locator(".template-card").count() == 1
    offer.click()
    page.wait_for_url(f"**/templates/{Template.objects.get().pk}/")


def test_events_after_a_client_vanishes_are_not_logged_as_warnings(live, new_page, cast, finished_job, media_dir):
    """Pages that go away (a reset connection, or a page closed mid-stream) while events flow
    must not make the web server log "socket.send() raised exception." for later events."""
    import socket
    import struct
    import threading
    import time

    from django.test import Client

    from jobs import progress

    job = finished_job([media_dir / "face_square_1.mp4"])
    client = Client()
    client.force_login(cast.alice)
    host, port = live.url.rsplit("//", 1)[1].split(":")
    log = live_log(live)
    start = log.stat().st_size if log.exists() else 0
    stop = threading.Event()

    def flood():
        i = 0
        while not stop.is_set():
            progress.publish(job.pk, {"type": "render", "id": "x", "status": "rendering", "progress": (i % 100) / 100})
            i += 1

    import django.db

    def flood_thread():
        try:
            flood()
        finally:
            django.db.connections.close_all()

    flooder = threading.Thread(target=flood_thread)
    flooder.start()
    try:
        for _ in range(10):
            sock = socket.create_connection((host, int(port)))
            sock.sendall((f"GET /ws/jobs/{job.pk}/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {live.url}\r\n"
                          f"Cookie: sessionid={client.cookies['sessionid'].value}\r\n\r\n").encode())
            assert b"101" in sock.recv(4096).split(b"\r\n", 1)[0]
            time.sleep(0.2)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset, no closing handshake
        page = new_page()
        sign_in(page, "alice@example.com", cast.password)
        for _ in range(5):
            page.goto(f"/jobs/{job.pk}/")
            page.wait_for_timeout(300)
            page.goto("/")
        time.sleep(1.0)
    finally:
        stop.set()
        flooder.join()
    tail = log.read_text(errors="replace")[start:]
    assert "socket.send() raised exception" not in tail, tail[-2000:]
    assert " ERROR " not in tail and "Traceback" not in tail, tail[-2000:]


def live_log(live):
    from pathlib import Path

    return Path(str(live.worker_log).replace("-worker.log", "-web server.log"))


def test_new_pages_in_chinese_at_phone_width(live, new_page, cast, finished_job, media_dir):
    from jobs import previews

    job = finished_job([media_dir / "face_square_1.mp4", media_dir / "portrait_hevc_1080x1920.mp4"], title="手机")
    hevc = job.renders.get(template_name="portrait_hevc_1080x1920").template
    previews.template_preview_ensure(hevc)
    visitor = new_page(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN",
                       extra_http_headers={"Accept-Language": "zh-hans"})
    visitor.goto("/")
    assert visitor.locator("h1").inner_text() == "一段录音，多位主讲人"
    assert_no_horizontal_overflow(visitor)
    screenshot(visitor, "welcome-zh-hans-390", full_page=True)

    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, extra_http_headers={"Accept-Language": "zh-hans"})
    sign_in(page, "alice@example.com", cast.password)
    for path, name, words in ((f"/jobs/{job.pk}/", "job", "与模板对比"), ("/gallery/", "gallery", "下载所选"),
                              (f"/templates/{hevc.pk}/", "template-hevc", "H.264 预览"), ("/status/", "status", "状态"),
                              ("/jobs/new/", "new-batch", "用量与完成时间")):
        page.goto(path)
        assert words in page.locator("main").inner_text(), (path, words)
        assert_no_horizontal_overflow(page)
        screenshot(page, f"{name}-zh-hans-390", full_page=True)
