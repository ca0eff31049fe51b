"""Share links: the public /s/<token>/ pages, expiry, revocation, passwords and rate limiting."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.models import token_hash
from jobs.models import ShareLink
from jobs.sharing import ShareLinkError, sharelink_create, sharelink_revoke


@pytest.fixture(autouse=True)
def _clear_cache(redis_conn):
    cache.clear()


@pytest.fixture
def job(cast, make_finished_job):
    return make_finished_job(cast.acme, n=2, title="Spring launch")


def test_token_is_random_hashed_and_prefix_only(cast, job):
    link, token = sharelink_create(team=cast.acme, created_by=cast.bob, job=job)
    assert len(token) >= 32  # 24 random bytes, url-safe
    assert link.token_hash == token_hash(token) and token not in link.token_hash
    assert ShareLink.objects.filter(token_hash=token).count() == 0
    _, other = sharelink_create(team=cast.acme, job=job)
    assert other != token


def test_public_page_shows_player_download_og_tags_and_nothing_of_the_team(client, cast, job):
    link, token = sharelink_create(team=cast.acme, created_by=cast.bob, job=job)
    response = client.get(reverse("share_view", args=[token]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<video") == 2 and html.count("download") >= 2
    assert '<meta property="og:type" content="video.other">' in html
    assert '<meta property="og:title" content="Spring launch">' in html
    og_video = re.search(r'og:video" content="([^"]+)"', html).group(1)
    assert og_video.startswith("http://testserver/s/") and "/video/" in og_video
    assert re.search(r'og:image" content="http://testserver/s/[^"]+/poster/', html)
    for secret in ("Acme", "acme", "alice", "bob@", "Presenter 1", str(job.pk)):
        assert secret not in html, secret
    link.refresh_from_db()
    assert link.views == 1


def test_video_streams_with_range_and_download_is_attachment(client, cast, job):
    _, token = sharelink_create(team=cast.acme, job=job)
    render = job.renders.first()
    url = reverse("share_video", args=[token, render.pk])
    full = client.get(url)
    assert full.status_code == 200 and full["Content-Type"] == "video/mp4"
    size = render.output_size_bytes
    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{size}"
    assert len(b"".join(part.streaming_content)) == 100
    dl = client.get(reverse("share_download", args=[token, render.pk]))
    assert dl.status_code == 200 and dl["Content-Disposition"].startswith("attachment")
    poster = client.get(reverse("share_poster", args=[token, render.pk]))
    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"


def test_render_link_only_shows_that_render(client, cast, job):
    one, two = job.renders.order_by("template_name")
    _, token = sharelink_create(team=cast.acme, render=one)
    html = client.get(reverse("share_view", args=[token])).content.decode()
    assert html.count("<video") == 1
    assert client.get(reverse("share_video", args=[token, two.pk])).status_code == 404
    assert client.get(reverse("share_video", args=[token, one.pk])).status_code == 200


def test_unknown_404_revoked_410_expired_410(client, cast, job):
    assert client.get(reverse("share_view", args=["nope" * 8])).status_code == 404
    link, token = sharelink_create(team=cast.acme, job=job)
    render = job.renders.first()
    sharelink_revoke(link=link)
    for name, args in (("share_view", [token]), ("share_video", [token, render.pk]), ("share_download", [token, render.pk])):
        response = client.get(reverse(name, args=args))
        assert response.status_code == 410, name
    link2, token2 = sharelink_create(team=cast.acme, job=job, expires_at=timezone.now() + timedelta(hours=1))
    assert client.get(reverse("share_view", args=[token2])).status_code == 200
    ShareLink.objects.filter(pk=link2.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = client.get(reverse("share_view", args=[token2]))
    assert gone.status_code == 410 and b"<video" not in gone.content
    assert client.get(reverse("share_video", args=[token2, render.pk])).status_code == 410


def test_create_refuses_bad_targets(cast, job, make_finished_job):
    other = make_finished_job(cast.globex, n=1)
    with pytest.raises(ShareLinkError):
        sharelink_create(team=cast.acme, job=other)
    with pytest.raises(ShareLinkError):
        sharelink_create(team=cast.acme, job=job, render=job.renders.first())
    with pytest.raises(ShareLinkError):
        sharelink_create(team=cast.acme, job=job, expires_at=timezone.now() - timedelta(minutes=1))
    failed = make_finished_job(cast.acme, n=1, statuses=["failed"]).renders.get()
    with pytest.raises(ShareLinkError):
        sharelink_create(team=cast.acme, render=failed)


def test_password_form_wrong_403_right_grants_session(client, cast, job):
    _, token = sharelink_create(team=cast.acme, job=job, password="open sesame")
    url = reverse("share_view", args=[token])
    render = job.renders.first()
    form = client.get(url)
    assert form.status_code == 200 and b'type="password"' in form.content and b"<video" not in form.content
    assert b"og:video" not in form.content
    # The files are locked too until the password was given.
    assert client.get(reverse("share_video", args=[token, render.pk])).status_code == 403
    wrong = client.post(url, {"password": "guess"})
    assert wrong.status_code == 403 and b'type="password"' in wrong.content
    right = client.post(url, {"password": "open sesame"})
    assert right.status_code == 302
    assert client.get(url).status_code == 200
    assert client.get(reverse("share_video", args=[token, render.pk])).status_code == 200


def test_password_attempts_rate_limited_per_link_and_ip(client, cast, job, settings):
    settings.SHARE_PASSWORD_MAX_ATTEMPTS = 3
    _, token = sharelink_create(team=cast.acme, job=job, password="open sesame")
    url = reverse("share_view", args=[token])
    for _ in range(3):
        assert client.post(url, {"password": "nope"}).status_code == 403
    blocked = client.post(url, {"password": "open sesame"}, REMOTE_ADDR="127.0.0.1")
    assert blocked.status_code == 429  # even the right password, until the window passes
    # Another IP has its own budget.
    assert client.post(url, {"password": "open sesame"}, REMOTE_ADDR="10.9.8.7").status_code == 302


def test_portal_create_and_revoke_from_job_page(client, cast, job):
    client.force_login(cast.bob)
    response = client.post(reverse("share_create"), {"target": f"job:{job.pk}", "expires_days": "7", "password": ""})
    assert response.status_code == 200
    url = response.context["share_url"]
    assert url.startswith("http://testserver/s/")
    link = ShareLink.objects.get(job=job)
    assert link.created_by == cast.bob and link.expires_at > timezone.now() + timedelta(days=6)
    assert client.get(url).status_code == 200
    revoke = client.post(reverse("share_revoke", args=[link.pk]), {"next": "/elsewhere/"})
    assert revoke.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert client.get(url).status_code == 410


def test_portal_viewer_cannot_share_and_other_team_gets_404(client, cast, job):
    client.force_login(cast.vera)
    assert client.post(reverse("share_create"), {"job": str(job.pk)}).status_code == 403
    client.force_login(cast.charlie)
    assert client.post(reverse("share_create"), {"job": str(job.pk)}).status_code == 404
    link, _ = sharelink_create(team=cast.acme, job=job)
    assert client.post(reverse("share_revoke", args=[link.pk])).status_code == 404
    link.refresh_from_db()
    assert link.revoked_at is None


def test_share_panel_include_renders(rf, cast, job):
    from django.template.loader import render_to_string

    sharelink_create(team=cast.acme, job=job)
    request = rf.get("/jobs/x/")
    request.user = cast.bob
    html = render_to_string("sharing/_share_panel.html", {"job": job, "renders": list(job.renders.all()), "request": request})
    assert 'name="target"' in html and "Revoke" in html and "active" in html
    request.user = cast.vera
    html = render_to_string("sharing/_share_panel.html", {"job": job, "renders": list(job.renders.all()), "request": request})
    assert 'name="target"' not in html and "Revoke" not in html
