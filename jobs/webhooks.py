"""Signed webhooks: event building, signing, SSRF guard and delivery on the "webhooks" queue.

Signature: HMAC-SHA256 with the team's webhook secret over "<timestamp>.<raw body>", sent as
`Mouthpiece-Timestamp: <unix seconds>` and `Mouthpiece-Signature: v1=<hex digest>`.
docs/API.md shows `verify_signature` below as the receiver's reference implementation.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team
from jobs.models import Job, Render, WebhookDelivery
from jobs.selectors import render_status_counts

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Mouthpiece-Signature"
TIMESTAMP_HEADER = "Mouthpiece-Timestamp"
EVENT_HEADER = "Mouthpiece-Event"
DELIVERY_HEADER = "Mouthpiece-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300
QUEUE = "webhooks"

EVENT_RENDER_DONE = "render.done"
EVENT_RENDER_FAILED = "render.failed"
EVENT_JOB_FINISHED = "job.finished"


# --- signing -------------------------------------------------------------------------------

def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `Mouthpiece-Signature` header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, *,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """Receiver-side check (the same code is in docs/API.md): True when `header` carries a v1
    signature of "timestamp.body" under `secret` and the timestamp is within `tolerance` seconds."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False  # a replay of an old, captured request
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(part.strip(), expected) for part in header.split(","))


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_secret_rotate(*, team: Team) -> str:
    """A new signing secret for the team; the caller shows it once."""
    team.webhook_secret = _new_secret()
    team.save(update_fields=["webhook_secret"])
    return team.webhook_secret


def webhook_secret_ensure(*, team: Team) -> bool:
    """Give the team a signing secret if it has none (never replaces one, even when two
    processes race: the write is conditional). True when this call created it."""
    if team.webhook_secret:
        return False
    created = bool(Team.objects.filter(pk=team.pk, webhook_secret="").update(webhook_secret=_new_secret()))
    team.webhook_secret = Team.objects.values_list("webhook_secret", flat=True).get(pk=team.pk)
    return created


def webhook_url_set(*, team: Team, url: str) -> bool:
    """Set the team's default webhook URL ("" clears it); refused URLs raise WebhookUrlRefused.
    Setting a URL gives the team its signing secret now, so the receiver can be set up before
    the first event; True when a secret was created by this call."""
    url = (url or "").strip()
    if url:
        webhook_url_check(url)
    with transaction.atomic():
        team.webhook_url = url
        team.save(update_fields=["webhook_url"])
        return webhook_secret_ensure(team=team) if url else False


# --- SSRF guard ----------------------------------------------------------------------------

class WebhookUrlRefused(ValueError):
    """The URL is not http(s) or resolves to an address a webhook may not reach."""


# IPv6 prefixes that carry an IPv4 address to a translator or relay: NAT64 (64:ff9b::/96, and
# the local-use 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo (2001::/32). Whatever IPv4 address
# they embed, the connection ends where the platform cannot check it: none is a webhook target.
_TRANSLATION_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32"))


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in n for n in _TRANSLATION_NETWORKS):
        return False
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def webhook_url_check(url: str) -> list[str]:
    """Validate a webhook URL and return the addresses its host resolves to.

    With settings.WEBHOOK_ALLOW_PRIVATE False every resolved address must be public: one private
    address among several is enough to refuse (the connection could land on any of them).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlRefused(_("Webhook URLs must start with http:// or https:// and name a host."))
    if parts.username or parts.password:
        raise WebhookUrlRefused(_("Webhook URLs may not contain credentials."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlRefused(_("The webhook URL has an invalid port.")) from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlRefused(_("The webhook host name does not resolve.")) from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if not _address_is_public(address):
                raise WebhookUrlRefused(_("Webhook URLs may not point to private, loopback or link-local addresses."))
    return addresses


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST once, pinned to an address that passed the guard (no DNS rebinding between check and
    connect), no redirects followed. Returns the status code; raises OSError on network errors."""
    addresses = webhook_url_check(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = settings.WEBHOOK_TIMEOUT
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    conn._create_connection = lambda _addr, t, source_address=None: socket.create_connection((addresses[0], port), t, source_address)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # drain a little; the body is not used
        return response.status
    finally:
        conn.close()


# --- events --------------------------------------------------------------------------------

def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _render_data(render: Render) -> dict:
    data = {
        "id": str(render.id),
        "job_id": str(render.job_id),
        "template_id": str(render.template_id) if render.template_id else None,
        "template_name": render.template_name,
        "status": render.status,
        "error_code": render.error_code or None,
        "error_message": render.error_message or None,
        "duration": render.output_duration or None,
        "size_bytes": render.output_size_bytes or None,
        "quality": render.quality or {},
        "finished": render.finished.isoformat() if render.finished else None,
        "url": _absolute(reverse("api_render_detail", args=[render.id])),
        "download_url": None,
    }
    if render.status == Render.Status.DONE:
        data["download_url"] = _absolute(reverse("api_render_download", args=[render.id]))
    return data


def _job_data(job: Job) -> dict:
    renders = list(job.renders.all())
    return {
        "id": str(job.id),
        "title": job.title,
        "status": job.status,
        "priority": job.priority,
        "created": job.created.isoformat(),
        "finished": job.finished.isoformat() if job.finished else None,
        "render_counts": render_status_counts(renders),
        "url": _absolute(reverse("api_job_detail", args=[job.id])),
        "renders": [_render_data(r) for r in renders],
    }


def _target_url(job: Job) -> str:
    return job.webhook_url or job.team.webhook_url


def webhook_event_enqueue(*, team: Team, job: Job | None, event: str, url: str, data: dict) -> WebhookDelivery:
    """Record a delivery and enqueue it once the surrounding transaction commits. A job's own
    URL can exist on a team that never set one, so the secret is ensured here too, before any
    delivery: the delivery task only reads it."""
    webhook_secret_ensure(team=team)
    delivery = WebhookDelivery(team=team, job=job, event=event, url=url)
    delivery.payload = {
        "id": str(delivery.id), "type": event, "created": timezone.now().isoformat(),
        "team": team.slug, "data": data,
    }
    delivery.save()
    transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_id=delivery.id))
    return delivery


def webhook_events_for_render_finished(render: Render) -> list[WebhookDelivery]:
    """Called by the render_finish service: one event for a done or failed render (cancelled and
    expired renders are the caller's own doing and send nothing)."""
    job = render.job
    url = _target_url(job)
    if not url or render.status not in (Render.Status.DONE, Render.Status.FAILED):
        return []
    event = EVENT_RENDER_DONE if render.status == Render.Status.DONE else EVENT_RENDER_FAILED
    return [webhook_event_enqueue(team=job.team, job=job, event=event, url=url,
                                  data={"render": _render_data(render), "job_id": str(job.id)})]


def webhook_events_for_job_finished(job: Job) -> list[WebhookDelivery]:
    """Called once when the job reaches a final status (done, partial, failed, cancelled)."""
    url = _target_url(job)
    if not url:
        return []
    return [webhook_event_enqueue(team=job.team, job=job, event=EVENT_JOB_FINISHED, url=url, data={"job": _job_data(job)})]


# --- delivery ------------------------------------------------------------------------------

def retry_intervals() -> list[int]:
    """Exponential backoff: base, 4·base, 16·base, ... (WEBHOOK_RETRY_BASE_SECONDS, capped at 6 h)."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    return [min(int(base * 4**i), 6 * 3600) for i in range(max(settings.WEBHOOK_MAX_ATTEMPTS - 1, 1))]


def webhook_delivery_enqueue(*, delivery_id) -> None:
    import django_rq
    from rq import Retry

    # Callers already defer this to transaction.on_commit; enqueue now, not on a later commit.
    queue = django_rq.get_queue(QUEUE, commit_mode="auto")
    retry = Retry(max=settings.WEBHOOK_MAX_ATTEMPTS - 1, interval=retry_intervals()) if settings.WEBHOOK_MAX_ATTEMPTS > 1 else None
    queue.enqueue("jobs.webhooks.webhook_deliver", str(delivery_id), retry=retry, job_timeout=int(settings.WEBHOOK_TIMEOUT * 3) + 30,
                  job_id=f"webhook-{delivery_id}-{int(time.time() * 1000)}")


class WebhookAttemptFailed(Exception):
    """Raised so that RQ schedules the next attempt."""


def webhook_deliver(delivery_id: str) -> str:
    """RQ task: one delivery attempt. Safe to run twice: a delivered event is not sent again."""
    delivery = WebhookDelivery.objects.select_related("team").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return "skipped"
    team = delivery.team
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Mouthpiece-Webhooks/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(team.webhook_secret, timestamp, body),
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
    }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        status_code = _post(delivery.url, body, headers)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookUrlRefused as e:
        error = str(e)
    except (OSError, http.client.HTTPException) as e:  # timeouts are OSErrors too
        error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return webhook_attempt_record(delivery=delivery, status_code=status_code, error=error,
                                  duration_ms=round((time.monotonic() - started) * 1000))


def webhook_attempt_record(*, delivery: WebhookDelivery, status_code: int | None, error: str, duration_ms: int) -> str:
    attempt = {"at": timezone.now().isoformat(), "status_code": status_code, "duration_ms": duration_ms, "error": error[:300]}
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        locked.attempts = [*locked.attempts, attempt]
        if not error:
            locked.status, locked.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
        elif len(locked.attempts) >= settings.WEBHOOK_MAX_ATTEMPTS:
            locked.status = WebhookDelivery.Status.FAILED
        locked.save(update_fields=["attempts", "status", "delivered_at"])
    if not error:
        return "delivered"
    if locked.status == WebhookDelivery.Status.FAILED:
        # The host only: a webhook URL's path or query is often its secret (Slack, Teams, Zapier).
        log.warning("webhook %s to %s gave up after %d attempts: %s", delivery.id, urlsplit(delivery.url).netloc,
                    len(locked.attempts), error)
        return "failed"
    raise WebhookAttemptFailed(f"attempt {len(locked.attempts)} failed: {error}")


def webhook_deliveries_for_team(*, team: Team, limit: int = 50):
    return WebhookDelivery.objects.filter(team=team).select_related("job")[:limit]


# --- wiring --------------------------------------------------------------------------------

def _on_render_finished(sender, render, **kwargs):
    webhook_events_for_render_finished(render)


def _on_job_finished(sender, job, **kwargs):
    webhook_events_for_job_finished(job)


def connect_signals() -> None:
    """Listen to the jobs services' render_finished / job_finished signals (idempotent).
    Called from JobsConfig.ready() so web and worker processes both send events."""
    from jobs.services import job_finished, render_finished

    render_finished.connect(_on_render_finished, dispatch_uid="webhooks.render_finished")
    job_finished.connect(_on_job_finished, dispatch_uid="webhooks.job_finished")
