"""Issue 14 in a real browser: what a first-time user trips over (share passwords, players,
drag-and-drop, Chinese live updates, errors, phone width...)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_testutil import VIDEO_DURATION_JS, screenshot, sign_in

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
