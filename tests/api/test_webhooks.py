"""Signed webhooks delivered by a real RQ burst worker to a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import time

import pytest

from jobs import webhooks
from jobs.models import Render, WebhookDelivery


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0  # retries requeue at once, so a burst worker runs them
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_TIMEOUT = 2.0
    settings.WEBHOOK_ALLOW_PRIVATE = True


def test_signature_round_trip_and_tamper():
    body = b'{"type":"job.finished"}'
    ts = str(int(time.time()))
    header = webhooks.sign("whsec_abc", ts, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert webhooks.verify_signature("whsec_abc", ts, body, header)
    assert not webhooks.verify_signature("whsec_other", ts, body, header)
    assert not webhooks.verify_signature("whsec_abc", ts, body + b" ", header)
    assert not webhooks.verify_signature("whsec_abc", str(int(ts) + 1), body, header)
    # Stale timestamps are replays.
    old = str(int(time.time()) - 3600)
    assert not webhooks.verify_signature("whsec_abc", old, body, webhooks.sign("whsec_abc", old, body))
    assert not webhooks.verify_signature("whsec_abc", "soon", body, header)


def test_docs_snippet_is_the_same_code():
    """docs/API.md shows verify_signature for receivers; it must stay the code we test."""
    import inspect
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    body_lines = [ln.strip() for ln in inspect.getsource(webhooks.verify_signature).splitlines()
                  if ln.strip() and not ln.strip().startswith(('"""', "#")) and '"""' not in ln]
    for line in body_lines:
        if line.startswith(("signature of", "and the timestamp")):
            continue
        assert line.split("  #")[0].strip() in doc, line


def test_render_and_job_events_delivered_signed(cast, make_finished_job, receiver, run_webhooks, fast_retries,
                                                django_capture_on_commit_callbacks):
    rx = receiver([200])
    cast.acme.webhook_url = rx.url
    cast.acme.save()
    secret = webhooks.webhook_secret_rotate(team=cast.acme)
    job = make_finished_job(cast.acme, n=1)
    render = job.renders.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert len(webhooks.webhook_events_for_render_finished(render)) == 1
        assert len(webhooks.webhook_events_for_job_finished(job)) == 1
    run_webhooks()

    assert len(rx.requests) == 2
    assert rx.requests[0]["path"] == "/hooks/mouthpiece?x=1"
    for req in rx.requests:
        h = req["headers"]
        assert webhooks.verify_signature(secret, h["Mouthpiece-Timestamp"], req["body"], h["Mouthpiece-Signature"])
        assert h["Content-Type"] == "application/json"
    first, second = rx.json(0), rx.json(1)
    assert first["type"] == "render.done" and first["data"]["render"]["id"] == str(render.id)
    assert first["data"]["render"]["download_url"].endswith(f"/api/v1/renders/{render.id}/download/")
    assert second["type"] == "job.finished" and second["data"]["job"]["status"] == "done"
    assert second["data"]["job"]["render_counts"] == {"done": 1}
    deliveries = WebhookDelivery.objects.filter(team=cast.acme)
    assert {d.status for d in deliveries} == {"delivered"}
    for d in deliveries:
        assert len(d.attempts) == 1 and d.attempts[0]["status_code"] == 200 and d.attempts[0]["error"] == ""
        assert d.attempts[0]["duration_ms"] >= 0 and d.delivered_at is not None


def test_job_webhook_url_overrides_team_default_and_no_url_sends_nothing(cast, make_finished_job, fast_retries,
                                                                         django_capture_on_commit_callbacks, receiver):
    job = make_finished_job(cast.acme, n=1)
    assert webhooks.webhook_events_for_job_finished(job) == []  # no URL anywhere
    rx = receiver()
    cast.acme.webhook_url = "http://example.invalid/never"
    cast.acme.save()
    job.webhook_url = rx.url
    job.save()
    (delivery,) = webhooks.webhook_events_for_job_finished(job)
    assert delivery.url == rx.url


def test_failed_render_event_and_cancelled_sends_nothing(cast, make_finished_job, receiver, fast_retries):
    rx = receiver()
    cast.acme.webhook_url = rx.url
    cast.acme.save()
    job = make_finished_job(cast.acme, n=2, statuses=["failed", "cancelled"])
    failed, cancelled = job.renders.order_by("template_name")
    failed.error_code, failed.error_message = "no_face", "No face was found in the template video."
    failed.save()
    (d,) = webhooks.webhook_events_for_render_finished(failed)
    assert d.event == "render.failed" and d.payload["data"]["render"]["error_code"] == "no_face"
    assert d.payload["data"]["render"]["download_url"] is None
    assert webhooks.webhook_events_for_render_finished(cancelled) == []


def test_retries_on_500_then_succeeds(cast, make_finished_job, receiver, run_webhooks, fast_retries,
                                      django_capture_on_commit_callbacks):
    rx = receiver([500, 503, 200])
    job = make_finished_job(cast.acme, n=1)
    job.webhook_url = rx.url
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = webhooks.webhook_events_for_job_finished(job)
    run_webhooks()
    delivery.refresh_from_db()
    assert len(rx.requests) == 3
    assert delivery.status == "delivered"
    assert [a["status_code"] for a in delivery.attempts] == [500, 503, 200]
    assert [bool(a["error"]) for a in delivery.attempts] == [True, True, False]
    # Every attempt carries the same event id, so receivers can de-duplicate.
    assert len({rx.json(i)["id"] for i in range(3)}) == 1


def test_gives_up_after_max_attempts(cast, make_finished_job, receiver, run_webhooks, fast_retries,
                                     django_capture_on_commit_callbacks):
    rx = receiver([500])
    job = make_finished_job(cast.acme, n=1)
    job.webhook_url = rx.url
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = webhooks.webhook_events_for_job_finished(job)
    queue = run_webhooks()
    delivery.refresh_from_db()
    assert len(rx.requests) == 3  # WEBHOOK_MAX_ATTEMPTS
    assert delivery.status == "failed" and len(delivery.attempts) == 3
    assert all(a["error"] == "HTTP 500" for a in delivery.attempts)
    assert queue.count == 0
    # Running the task again (e.g. a duplicate RQ job) sends nothing more.
    assert webhooks.webhook_deliver(str(delivery.id)) == "skipped"
    assert len(rx.requests) == 3


def test_giving_up_logs_the_host_not_the_secret_path(cast, make_finished_job, receiver, run_webhooks, fast_retries,
                                                    django_capture_on_commit_callbacks, caplog):
    """Issue 17, Low 6: a webhook URL's path is often its secret; the log names the host."""
    import logging

    rx = receiver([500])
    job = make_finished_job(cast.acme, n=1)
    job.webhook_url = rx.url.replace("/hooks/mouthpiece", "/services/T000/B000/s3cr3tW3bh00kT0k3n")
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_events_for_job_finished(job)
    with caplog.at_level(logging.WARNING):
        run_webhooks()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "gave up" in text and "127.0.0.1:" in text
    assert "s3cr3tW3bh00kT0k3n" not in text


def test_hanging_receiver_times_out_as_failed_attempt(cast, make_finished_job, receiver, settings, fast_retries):
    settings.WEBHOOK_TIMEOUT = 0.3
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    rx = receiver([200], delay=1.5)
    job = make_finished_job(cast.acme, n=1)
    job.webhook_url = rx.url
    job.save()
    (delivery,) = webhooks.webhook_events_for_job_finished(job)
    started = time.monotonic()
    assert webhooks.webhook_deliver(str(delivery.id)) == "failed"
    assert time.monotonic() - started < 1.4
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "timed out" in delivery.attempts[0]["error"].lower() or "timeout" in delivery.attempts[0]["error"].lower()
    assert delivery.attempts[0]["status_code"] is None


def test_backoff_intervals_grow(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    assert webhooks.retry_intervals() == [10, 40, 160, 640]


def test_enqueue_uses_rq_retry_with_backoff(cast, make_finished_job, redis_conn, settings):
    import django_rq

    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_MAX_ATTEMPTS = 4
    cast.acme.webhook_url = "https://hooks.example.com/x"
    cast.acme.save()
    job = make_finished_job(cast.acme, n=1)
    webhooks.webhook_delivery_enqueue(delivery_id=webhooks.webhook_events_for_job_finished(job)[0].id)
    (rq_job,) = django_rq.get_queue("webhooks").get_jobs()
    assert rq_job.retries_left == 3 and rq_job.retry_intervals == [10, 40, 160]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/hook", "http://localhost:8000/hook", "http://192.168.1.10/", "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/", "http://224.0.0.1/", "ftp://example.com/hook", "file:///etc/passwd", "http://user:pw@93.184.216.34/",
])
def test_ssrf_targets_refused_in_production(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookUrlRefused):
        webhooks.webhook_url_check(url)


@pytest.mark.parametrize("url", [
    "http://[2002:7f00:1::1]/hook",          # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/latest/",    # 6to4 of 169.254.169.254
    "http://[2002:808:808::1]/hook",         # 6to4 of a public address: still a relay we cannot check
    "http://[64:ff9b::7f00:1]/hook",         # NAT64 of 127.0.0.1
    "http://[64:ff9b:1::a00:1]/hook",        # local-use NAT64
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
])
def test_ipv6_translation_prefixes_are_refused_like_nat64(settings, url):
    """Issue 17, Low 12: 2002::/16 (6to4) was accepted while NAT64 was refused."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(webhooks.WebhookUrlRefused):
        webhooks.webhook_url_check(url)


def test_public_address_allowed_and_private_allowed_in_development(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.webhook_url_check("https://93.184.216.34/hook") == ["93.184.216.34"]
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.webhook_url_check("http://127.0.0.1:9/hook") == ["127.0.0.1"]
    with pytest.raises(webhooks.WebhookUrlRefused):
        webhooks.webhook_url_check("gopher://127.0.0.1/")


def test_delivery_to_private_address_refused_at_send_time(cast, make_finished_job, receiver, settings, fast_retries):
    """A URL that was fine when saved but is private when sent (or production mode) never connects."""
    rx = receiver()
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    job = make_finished_job(cast.acme, n=1)
    job.webhook_url = rx.url
    job.save()
    (delivery,) = webhooks.webhook_events_for_job_finished(job)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.webhook_deliver(str(delivery.id)) == "failed"
    assert rx.requests == []
    delivery.refresh_from_db()
    assert "private" in delivery.attempts[0]["error"]


def test_signals_from_jobs_services_create_deliveries(cast, make_finished_job, receiver, fast_retries):
    """render_finish / job_status_refresh send these signals; the webhooks listen to them."""
    from jobs.services import job_finished, render_finished

    rx = receiver()
    cast.acme.webhook_url = rx.url
    cast.acme.save()
    job = make_finished_job(cast.acme, n=1)
    render_finished.send(sender=Render, render=job.renders.get())
    job_finished.send(sender=type(job), job=job)
    assert sorted(WebhookDelivery.objects.values_list("event", flat=True)) == ["job.finished", "render.done"]


def test_setting_the_url_creates_the_secret_at_once(cast, settings):
    """The signing secret exists as soon as a URL is set (not at the first delivery), so the
    receiver can be configured first; setting it again keeps it; clearing the URL makes none."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert cast.acme.webhook_secret == ""
    assert webhooks.webhook_url_set(team=cast.acme, url="") is False
    cast.acme.refresh_from_db()
    assert cast.acme.webhook_secret == ""
    assert webhooks.webhook_url_set(team=cast.acme, url="http://127.0.0.1:9/hook") is True
    cast.acme.refresh_from_db()
    secret = cast.acme.webhook_secret
    assert secret.startswith("whsec_")
    assert webhooks.webhook_url_set(team=cast.acme, url="http://127.0.0.1:9/other") is False
    cast.acme.refresh_from_db()
    assert cast.acme.webhook_secret == secret


def test_delivery_task_never_writes_the_secret():
    import inspect

    source = inspect.getsource(webhooks.webhook_deliver)
    assert "webhook_secret_rotate" not in source and "webhook_secret_ensure" not in source
