"""/healthz answers everyone with its status; the checks and the workers (host names, pids) only
staff users and requests with the HEALTHZ_TOKEN header see."""
from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

WORKER = {"name": "gpu-0", "host": "render-host-7.internal", "pid": 4242, "state": "idle", "queues": ["default"],
          "current_job": None, "last_heartbeat": None, "heartbeat_age": 1.0, "health": "alive"}


@pytest.fixture
def fake_workers(monkeypatch):
    """The real checks, with Redis and RQ answered by fakes: one alive render worker."""
    from config import health

    monkeypatch.setattr(health, "redis_check", lambda: {})
    monkeypatch.setattr(health, "queue_depths", lambda conn=None: {"default": {"queued": 0}})
    monkeypatch.setattr(health, "workers_report", lambda conn=None: [dict(WORKER)])


def test_anonymous_gets_the_status_only(client, fake_workers, settings):
    settings.HEALTHZ_TOKEN = "s3cret"
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "scope": "all"}
    assert b"render-host-7" not in response.content and b"4242" not in response.content
    assert client.get(reverse("healthz"), HTTP_X_HEALTHZ_TOKEN="wrong").json() == {"status": "ok", "scope": "all"}


def test_failing_status_code_is_kept_for_anonymous(client, monkeypatch, settings):
    from config import health

    monkeypatch.setattr(health, "redis_check", lambda: (_ for _ in ()).throw(ConnectionError("redis-host:6379 refused")))
    response = client.get(reverse("healthz"))
    assert response.status_code == 503 and response.json() == {"status": "fail", "scope": "all"}
    assert b"redis-host" not in response.content


def test_token_shows_checks_and_worker_hosts(client, fake_workers, settings):
    settings.HEALTHZ_TOKEN = "s3cret"
    body = client.get(reverse("healthz"), HTTP_X_HEALTHZ_TOKEN="s3cret").json()
    assert body["status"] == "ok" and body["checks"]["workers"]["alive"] == 1
    assert body["checks"]["workers"]["workers"][0]["host"] == "render-host-7.internal"


def test_no_token_configured_means_no_token_works(client, fake_workers, settings):
    settings.HEALTHZ_TOKEN = ""
    assert "checks" not in client.get(reverse("healthz"), HTTP_X_HEALTHZ_TOKEN="").json()


def test_staff_see_details_members_do_not(client, cast, fake_workers, django_user_model):
    client.force_login(cast.alice)  # a team owner, not staff
    assert "checks" not in client.get(reverse("healthz")).json()
    staff = django_user_model.objects.create_user(email="ops@example.com", password="x-long-pass-123", is_staff=True)
    client.force_login(staff)
    body = client.get(reverse("healthz")).json()
    assert body["checks"]["workers"]["workers"][0]["host"] == "render-host-7.internal"
