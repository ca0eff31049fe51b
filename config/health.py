"""/healthz: one JSON answer for load balancers, container health checks and people.

    GET /healthz             database, Redis, queue depths and render workers (the whole platform)
    GET /healthz?scope=web   database and Redis only: what this web process needs to serve pages

The status is 200 when every check in scope passes and 503 otherwise. Anyone gets the status
({"status", "scope"}); the checks and the workers' names, hosts and pids are shown only to staff
users and to requests carrying `X-Healthz-Token: <settings.HEALTHZ_TOKEN>` (one access helper,
`may_see_details`). The web container's
health check uses scope=web so that a fleet without live workers never takes the portal down
with it; a monitor that should page someone when rendering stops uses the full check.

A worker counts as alive when its RQ registration still exists and it has shown a sign of life
recently: an idle RQ worker blocks in BLPOP for (worker_ttl - 15) s between heartbeats, and a
SimpleWorker does not beat while it runs a job, so a busy worker is given its job's timeout.
On the same host we also ask the kernel whether the pid still exists, which catches a killed
worker at once instead of when its registration expires.
"""
from __future__ import annotations

import hmac
import os
import socket
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

QUEUE_REGISTRIES = ("started", "failed", "deferred", "scheduled")


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # a health check reports every failure, it never raises
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def database_check() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _queue_connection():
    import django_rq

    return django_rq.get_connection("default")


def redis_check() -> dict:
    conn = _queue_connection()
    conn.ping()
    return {}


def queue_depths(conn=None) -> dict[str, dict[str, int]]:
    """Per queue: jobs waiting, plus the started/failed/deferred/scheduled registries."""
    from rq import Queue

    conn = conn or _queue_connection()
    depths = {}
    for name in settings.RQ_QUEUES:
        queue = Queue(name, connection=conn)
        depths[name] = {
            "queued": queue.count,
            "started": queue.started_job_registry.count,
            "failed": queue.failed_job_registry.count,
            "deferred": queue.deferred_job_registry.count,
            "scheduled": queue.scheduled_job_registry.count,
        }
    return depths


def _pid_gone(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        return False
    return False


def worker_health(worker, *, now: datetime | None = None, stale_after: float | None = None) -> dict:
    """One worker as the health check and `manage.py workers` see it."""
    now = now or datetime.now(UTC)
    stale_after = settings.HEALTH_WORKER_STALE_SECONDS if stale_after is None else stale_after
    state = worker.get_state()
    current = worker.get_current_job() if state == "busy" else None
    if current is not None and current.timeout and current.timeout > 0:
        stale_after = max(stale_after, current.timeout + 60)
    beat = worker.last_heartbeat
    if beat is not None and beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    age = (now - beat).total_seconds() if beat else None
    if worker.hostname == socket.gethostname() and _pid_gone(worker.pid):
        verdict = "dead"
    elif age is None or age > stale_after:
        verdict = "stale"
    else:
        verdict = "alive"
    return {
        "name": worker.name,
        "host": worker.hostname,
        "pid": worker.pid,
        "state": state,
        "queues": worker.queue_names(),
        "current_job": current.id if current is not None else None,
        "last_heartbeat": beat.isoformat() if beat else None,
        "heartbeat_age": round(age, 1) if age is not None else None,
        "health": verdict,
    }


def workers_report(conn=None) -> list[dict]:
    from rq import Worker

    conn = conn or _queue_connection()
    return [worker_health(w) for w in Worker.all(connection=conn)]


def render_workers_check(*, listed: bool = False) -> dict:
    """Counts of render workers by health; with `listed`, each worker as well."""
    workers = workers_report()
    render_queues = set(settings.RENDER_QUEUES)
    render_workers = [w for w in workers if render_queues & set(w["queues"])]
    alive = sum(w["health"] == "alive" for w in render_workers)
    result = {
        "alive": alive,
        "stale": sum(w["health"] == "stale" for w in render_workers),
        "dead": sum(w["health"] == "dead" for w in render_workers),
        "busy": sum(w["health"] == "alive" and w["state"] == "busy" for w in render_workers),
        "other_alive": sum(w["health"] == "alive" for w in workers if w not in render_workers),
        "required": settings.HEALTH_MIN_WORKERS,
    }
    if listed:
        result["workers"] = workers
    if alive < settings.HEALTH_MIN_WORKERS:
        result["error"] = f"{alive} render worker(s) alive, {settings.HEALTH_MIN_WORKERS} required"
        raise _Unhealthy(result)
    return result


class _Unhealthy(Exception):
    def __init__(self, detail: dict):
        super().__init__(detail.get("error", "unhealthy"))
        self.detail = detail


def health_report(*, scope: str = "all", workers: bool = False) -> dict:
    """The whole report; with `workers`, the list of workers too (names, hosts, pids)."""
    checks = {"database": _timed(database_check), "redis": _timed(redis_check)}
    if scope != "web":
        if checks["redis"]["ok"]:
            checks["queues"] = _timed(lambda: {"depths": queue_depths()})
            started = time.monotonic()
            try:
                checks["workers"] = {"ok": True, **render_workers_check(listed=workers)}
            except _Unhealthy as unhealthy:
                checks["workers"] = {"ok": False, **unhealthy.detail}
            except Exception as exc:
                checks["workers"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            checks["workers"]["ms"] = round((time.monotonic() - started) * 1000, 1)
        else:
            checks["queues"] = {"ok": False, "error": "redis unavailable"}
            checks["workers"] = {"ok": False, "error": "redis unavailable"}
    healthy = all(c["ok"] for c in checks.values())
    return {"status": "ok" if healthy else "fail", "scope": scope, "checks": checks}


TOKEN_HEADER = "X-Healthz-Token"


def may_see_details(request) -> bool:
    """Staff users, and requests with the HEALTHZ_TOKEN header, see the checks and the workers."""
    if getattr(request.user, "is_staff", False):
        return True
    token = settings.HEALTHZ_TOKEN
    given = request.headers.get(TOKEN_HEADER, "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@never_cache
@require_GET
def healthz(request):
    scope = "web" if request.GET.get("scope") == "web" else "all"
    details = may_see_details(request)
    report = health_report(scope=scope, workers=details)
    body = report if details else {"status": report["status"], "scope": scope}
    return JsonResponse(body, status=200 if report["status"] == "ok" else 503)
