"""Issue 14 in a real browser: what a first-time user trips over (share passwords, players,
drag-and-drop, Chinese live updates, errors, phone width...)."""
from __future__ import annotations

import re

import pytest
from browser_testutil import VIDEO_DURATION_JS, assert_players_keep_shape, drop_files, screenshot, sign_in
from testutil import cut_audio

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r"/jobs/[0-9a-f-]{36}/$")


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
