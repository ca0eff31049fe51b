"""Live state of renders: the websocket payloads, their publication to the channel layer,
the Redis flags a running render polls (cancel), and the worker's heartbeat.

Everything here tolerates a Redis hiccup: losing one progress event must never fail a render.
"""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connections
from django.urls import reverse
from django.utils import timezone, translation

log = logging.getLogger(__name__)

CANCEL_KEY = "mp:render-cancel:{}"
CANCEL_TTL = 7 * 24 * 3600

# Engine stage -> Render status shown to people.
STAGE_STATUS = {"preparing": "preparing", "analysing": "preparing", "rendering": "rendering", "encoding": "encoding"}


def redis():
    import django_rq

    return django_rq.get_connection("default")


def job_group(job_id) -> str:
    return f"job-{job_id}"


# --- Cancel flag ---------------------------------------------------------------------------

def cancel_flag_set(render_id) -> None:
    redis().set(CANCEL_KEY.format(render_id), "1", ex=CANCEL_TTL)


def cancel_flags_set(render_ids) -> None:
    """cancel_flag_set for many renders in one round trip (a batch cancelled at once)."""
    if not render_ids:
        return
    pipe = redis().pipeline()
    for render_id in render_ids:
        pipe.set(CANCEL_KEY.format(render_id), "1", ex=CANCEL_TTL)
    pipe.execute()


def cancel_flag_clear(render_id) -> None:
    redis().delete(CANCEL_KEY.format(render_id))


def cancel_flag_is_set(render_id) -> bool:
    try:
        return bool(redis().exists(CANCEL_KEY.format(render_id)))
    except Exception:  # Redis away for a moment: keep rendering rather than fail
        log.warning("cancel flag check failed for render %s", render_id, exc_info=True)
        return False


class CancelPoll:
    """The engine's `cancelled()` callable: a Redis flag (user cancel) or the worker's own stop
    request (graceful shutdown). Redis is asked at most every `interval` seconds because the
    engine polls once per frame batch."""

    def __init__(self, render_id, *, stop_requested=lambda: False, interval: float = 0.25):
        self.render_id, self.stop_requested, self.interval = render_id, stop_requested, interval
        self._last = 0.0
        self.by_user = False

    def __call__(self) -> bool:
        if self.stop_requested():
            return True
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.by_user = cancel_flag_is_set(self.render_id)
        return self.by_user


# --- Payloads ------------------------------------------------------------------------------

def render_state(render) -> dict:
    """What a browser needs to draw one render's bar (also the initial websocket snapshot)."""
    from jobs.selectors import quality_findings, render_eta_seconds, render_quality_notes, render_queue_position

    state = {
        "type": "render",
        "id": str(render.id),
        "job": str(render.job_id),
        "template": render.template_name,
        "status": render.status,
        "status_label": str(render.get_status_display()),
        "final": render.is_final,
        "progress": round(float(render.progress), 4),
        "stage": render.stage,
        "attempts": render.attempts,
        "error_code": render.error_code,
        "error_message": render.error_message,
        "eta_seconds": render_eta_seconds(render),
        "queue_position": render_queue_position(render),
        "quality": {k: (render.quality or {}).get(k) for k in ("face_fraction", "sync_score", "sync_z")},
        "quality_notes": [str(n) for n in render_quality_notes(render)],
        "quality_help": [str(f["help"]) for f in quality_findings(render.quality or {})],
    }
    if render.is_final:  # a render's end changes the batch's outlook (job events come only on status changes)
        from jobs.selectors import job_eta_seconds

        state["job_eta_seconds"] = job_eta_seconds(render.job)
    if render.has_video:
        state["video_url"] = reverse("render_video", args=[render.id])
        state["download_url"] = reverse("render_download", args=[render.id])
    return state


def job_state(job) -> dict:
    from jobs.selectors import job_eta_seconds, job_progress

    return {
        "type": "job",
        "eta_seconds": job_eta_seconds(job),
        "id": str(job.id),
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "final": job.status in ("done", "partial", "failed", "cancelled"),
        "progress": round(job_progress(job), 4),
    }


def viewer_language(scope) -> str:
    """The language a websocket's page is in, chosen as LocaleMiddleware chooses it for pages:
    the language cookie (the switcher), else the browser's Accept-Language, else the default."""
    from django.utils.translation.trans_real import parse_accept_lang_header

    candidates = [(scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME) or ""]
    accept = dict(scope.get("headers") or ()).get(b"accept-language", b"").decode("latin-1")
    candidates += [code for code, _q in parse_accept_lang_header(accept) if code != "*"]
    for code in filter(None, candidates):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def localize(data: dict, language: str) -> dict:
    """One event in one viewer's language. Workers publish in the default language to everyone
    watching; each connection re-derives the texts from the codes the event carries."""
    from jobs.models import Job, Render, error_text
    from jobs.selectors import quality_findings

    kind = data.get("type")
    if kind not in ("render", "job"):
        return data
    with translation.override(language):
        if kind == "job":
            return {**data, "status_label": str(dict(Job.Status.choices).get(data.get("status"), data.get("status_label", "")))}
        data = {**data, "status_label": str(dict(Render.Status.choices).get(data.get("status"), data.get("status_label", "")))}
        if data.get("error_message"):
            data["error_message"] = error_text(data.get("error_code") or "", data["error_message"])
        if "quality" in data:
            findings = quality_findings(data["quality"] or {})
            data["quality_notes"] = [str(f["note"]) for f in findings]
            data["quality_help"] = [str(f["help"]) for f in findings]
        return data


def publish(job_id, data: dict) -> None:
    """Send one event to everyone watching the job (group "job-<id>")."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    data = {**data, "sent_at": time.time()}
    try:
        async_to_sync(get_channel_layer().group_send)(job_group(job_id), {"type": "job.event", "data": data})
    except Exception:
        log.warning("progress publish failed for job %s", job_id, exc_info=True)


def render_publish(render) -> None:
    publish(render.job_id, render_state(render))


def job_publish(job) -> None:
    publish(job.id, job_state(job))


class ProgressReporter:
    """The engine's `progress(fraction, stage)` callable for one render: saves to the Render row
    and publishes, at most PROGRESS_MAX_EVENTS_PER_SECOND times a second (a stage change
    always goes through; the final state is published by the service that ends the render)."""

    # The engine reports each stage's own 0..1; each stage owns a slice of the render's bar
    # (offset, width). Only render_finish sets 1.0, so a bar never shows 100 % early.
    STAGE_SLICES = {"preparing": (0.0, 0.10), "analysing": (0.10, 0.05), "rendering": (0.15, 0.80), "encoding": (0.95, 0.04)}

    def __init__(self, render):
        self.render = render
        self.min_gap = 1.0 / max(0.1, float(settings.PROGRESS_MAX_EVENTS_PER_SECOND))
        self._last = 0.0
        self._last_stage = None
        self.events = 0

    def __call__(self, fraction: float, stage: str) -> None:
        offset, width = self.STAGE_SLICES.get(stage, (0.0, 0.99))
        fraction = offset + width * max(0.0, min(1.0, float(fraction)))
        now = time.monotonic()
        if stage == self._last_stage and now - self._last < self.min_gap:
            return
        self._last, self._last_stage = now, stage
        from jobs.models import Render
        from jobs.services import render_transition

        status = STAGE_STATUS.get(stage, self.render.status)
        fraction = max(fraction, self.render.progress)  # bars never go backwards
        # A move within the running statuses (the state machine publishes it); none when the
        # render was cancelled or taken over meanwhile: then stay quiet.
        if render_transition(render=self.render, to=status, from_=Render.ACTIVE, refresh=False,
                             progress=fraction, stage=stage, heartbeat=timezone.now()):
            self.events += 1


# --- Heartbeat -----------------------------------------------------------------------------

class Heartbeat:
    """While a render runs, a thread stamps Render.heartbeat every RENDER_HEARTBEAT_SECONDS, so
    a worker killed with -9 is noticed (stale heartbeat) within RENDER_ABANDONED_AFTER."""

    def __init__(self, render_id, *, interval: float | None = None):
        self.render_id = render_id
        self.interval = interval or settings.RENDER_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{render_id}", daemon=True)

    def _run(self):
        from jobs.models import Render

        try:
            while not self._stop.wait(self.interval):
                try:
                    Render.objects.filter(pk=self.render_id, status__in=Render.ACTIVE).update(heartbeat=timezone.now())
                except Exception:
                    log.warning("heartbeat failed for render %s", self.render_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
