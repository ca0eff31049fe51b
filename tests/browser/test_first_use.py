"""Issue 14 in a real browser: what a first-time user trips over (share passwords, players,
drag-and-drop, Chinese live updates, errors, phone width...)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_testutil import VIDEO_DURATION_JS, assert_players_keep_shape, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
