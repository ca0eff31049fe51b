"""Renders: their lifecycle on the worker side (claim, finish, fail, requeue) and for people
(cancel, retry), and the recovery of abandoned ones."""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.models import Team, UsageEntry
from config.storage import media_delete, media_store_file, media_work_root
from jobs import progress
from jobs.models import Render, Template
from jobs.services import batches
from jobs.services.common import _authorize, render_finished
from jobs.services.dispatch import _rq_job_remove, renders_dispatch, template_prepare_enqueue

log = logging.getLogger(__name__)


def render_start(*, render_id, rq_job_id: str, worker_name: str = "") -> Render | None:
    """Claim a queued render for this RQ job; None when it was cancelled or belongs to another
    (stale) RQ job, so running a task twice is harmless."""
    now = timezone.now()
    claimed = Render.objects.filter(pk=render_id, status=Render.Status.QUEUED, rq_job_id=rq_job_id).update(
        status=Render.Status.PREPARING, stage="preparing", progress=0, started=now, heartbeat=now,
        worker_name=worker_name[:200], error_code="", error_message="", attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    render = Render.objects.select_related("job", "team", "template").get(pk=render_id)
    batches.job_status_refresh(job=render.job)
    progress.render_publish(render)
    return render



def render_finish(*, render: Render, result) -> Render:
    """The engine wrote the output (complete, renamed into place): record it and settle."""
    out = Path(result.path)
    relative = Path(os.path.relpath(out, media_work_root())).as_posix()
    size = out.stat().st_size
    # Stored before the row says "done", so a finished render always has its file.
    relative = media_store_file(local_path=out, name=relative)
    now = timezone.now()
    quality = {"face_fraction": _num(result.face_fraction), "sync_score": _num(result.sync_score),
               "sync_lag": result.sync_lag, "sync_z": _num(getattr(result, "sync_z", None))}
    with transaction.atomic():
        updated = Render.objects.filter(pk=render.pk, status__in=Render.ACTIVE, rq_job_id=render.rq_job_id).update(
            status=Render.Status.DONE, progress=1.0, stage="", output=relative, output_size_bytes=size,
            output_duration=float(result.duration), quality=quality, timings=dict(result.timings or {}),
            finished=now, heartbeat=now, expires_at=quotas.render_expiry_for(team=render.team, finished=now),
        )
        if not updated:
            # Cancelled or taken over meanwhile: the file is not ours to keep, unless another
            # attempt already finished into the same name.
            render.refresh_from_db()
            if render.output.name != relative:
                media_delete(relative)
            return render
        render.refresh_from_db()
        quotas.render_seconds_settle(render=render, actual_seconds=float(result.duration))
        quotas.usage_record(team=render.team, kind=UsageEntry.STORAGE, amount=size, reason="render_output",
                            job=render.job, render=render)
    _render_ended(render)
    render_finished.send_robust(sender=Render, render=render)
    return render


def _num(value):
    return None if value is None else round(float(value), 4)


def _render_ended(render: Render) -> None:
    """Follow-up of a render that reached a final state. Errors here (Redis blips) are logged,
    not raised: the render's own outcome is already recorded, and the periodic sweep
    (renders_recover_abandoned) dispatches whatever a failed dispatch left waiting."""
    try:
        progress.render_publish(render)
        batches.job_status_refresh(job=render.job)
        renders_dispatch(team=render.team)
    except Exception:
        log.exception("render %s: follow-up after %s failed; the sweep will catch up", render.pk, render.status)


def render_fail(*, render: Render, code: str, message: str) -> Render:
    with transaction.atomic():
        updated = Render.objects.filter(pk=render.pk).exclude(status__in=Render.FINAL).update(
            status=Render.Status.FAILED, stage="", error_code=code[:40], error_message=message, finished=timezone.now())
        render.refresh_from_db()
        if updated:
            quotas.render_seconds_settle(render=render, actual_seconds=0.0)
    if updated:
        _render_ended(render)
        render_finished.send_robust(sender=Render, render=render)
    return render


def render_mark_cancelled(*, render: Render) -> Render:
    with transaction.atomic():
        updated = Render.objects.filter(pk=render.pk).exclude(status__in=Render.FINAL).update(
            status=Render.Status.CANCELLED, stage="", finished=timezone.now())
        render.refresh_from_db()
        if updated:
            quotas.render_seconds_settle(render=render, actual_seconds=0.0)
    if updated:
        _render_ended(render)
    return render


def render_retry_pending(*, render: Render, code: str) -> None:
    """An infrastructure error with attempts left: RQ runs the same job again after a backoff."""
    Render.objects.filter(pk=render.pk, status__in=Render.ACTIVE).update(
        status=Render.Status.QUEUED, stage="", progress=0, error_code=code,
        error_message=_("Attempt %(n)d failed because of a server problem; trying again.") % {"n": render.attempts})
    render.refresh_from_db()
    progress.render_publish(render)


def render_requeue(*, render: Render, count_attempt: bool = True) -> bool:
    """Back to the waiting list (worker shutdown, abandoned render); dispatch picks it up."""
    fields = dict(status=Render.Status.QUEUED, stage="", progress=0, enqueued_at=None, rq_job_id="", heartbeat=None)
    if not count_attempt:
        fields["attempts"] = F("attempts") - 1
    updated = Render.objects.filter(pk=render.pk, status__in=Render.ACTIVE).update(**fields)
    render.refresh_from_db()
    if updated:
        progress.render_publish(render)
        renders_dispatch(team=render.team)
    return bool(updated)


# --- Render lifecycle (people) ----------------------------------------------------------------

def render_cancel(*, render: Render, user) -> Render:
    """Queued: removed at once. Running: the worker sees the flag at its next frame batch."""
    _authorize(team=render.team, user=user, action="job.cancel")
    if render.is_final:
        return render
    progress.cancel_flag_set(render.pk)
    with transaction.atomic():
        updated = Render.objects.filter(pk=render.pk, status=Render.Status.QUEUED).update(
            status=Render.Status.CANCELLED, stage="", finished=timezone.now())
        render.refresh_from_db()
        if updated:
            quotas.render_seconds_settle(render=render, actual_seconds=0.0)
    if updated:
        _rq_job_remove(render.rq_job_id)
        _render_ended(render)
    else:
        Render.objects.filter(pk=render.pk, status__in=Render.ACTIVE).update(stage="cancelling")
        render.refresh_from_db()
        progress.render_publish(render)
    return render


def render_retry(*, render: Render, user) -> Render:
    """Run a failed or cancelled render again (reserving its render seconds again)."""
    _authorize(team=render.team, user=user, action="job.retry")
    if render.status not in (Render.Status.FAILED, Render.Status.CANCELLED):
        raise ValidationError(_("Only a failed or cancelled render can be retried."), code="state")
    seconds = render.job.audio_duration
    with transaction.atomic():
        quotas.render_seconds_reserve(team=render.team, seconds=seconds, job=render.job, render=render)
        updated = Render.objects.filter(pk=render.pk, status__in=(Render.Status.FAILED, Render.Status.CANCELLED)).update(
            status=Render.Status.QUEUED, stage="", progress=0, attempts=0, error_code="", error_message="",
            reserved_seconds=seconds, enqueued_at=None, rq_job_id="", started=None, finished=None, heartbeat=None)
        if not updated:
            raise ValidationError(_("Only a failed or cancelled render can be retried."), code="state")
        progress.cancel_flag_clear(render.pk)
        render.refresh_from_db()
        batches.job_status_refresh(job=render.job)
        transaction.on_commit(lambda: renders_dispatch(team=render.team))
    progress.render_publish(render)
    return render


# --- Recovery ------------------------------------------------------------------------------

def renders_recover_abandoned() -> list[str]:
    """Renders whose worker stopped stamping the heartbeat (killed, host lost) go back to the
    queue, or fail after RENDER_MAX_ATTEMPTS. Safe to run from every worker at once: each row
    is taken over with a conditional update."""
    cutoff = timezone.now() - timedelta(seconds=settings.RENDER_ABANDONED_AFTER)
    stale = Render.objects.filter(status__in=Render.ACTIVE).filter(
        Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, started__lt=cutoff)).select_related("team", "job")
    recovered = []
    for render in stale:
        if progress.cancel_flag_is_set(render.pk):
            outcome = {"status": Render.Status.CANCELLED, "finished": timezone.now(), "stage": ""}
        elif render.attempts >= settings.RENDER_MAX_ATTEMPTS:
            outcome = {"status": Render.Status.FAILED, "finished": timezone.now(), "stage": "", "error_code": "abandoned",
                       "error_message": _("The worker running this render stopped, %(n)d times. Try again later or contact support.") % {"n": render.attempts}}
        else:
            outcome = {"status": Render.Status.QUEUED, "stage": "", "progress": 0, "enqueued_at": None, "rq_job_id": "",
                       "error_code": "abandoned", "error_message": _("The worker stopped; the render was queued again.")}
        with transaction.atomic():
            taken = Render.objects.filter(pk=render.pk, status=render.status, heartbeat=render.heartbeat).update(**outcome)
            render.refresh_from_db()
            if taken and render.status in Render.FINAL:
                quotas.render_seconds_settle(render=render, actual_seconds=0.0)
        if not taken:
            continue
        log.warning("render %s abandoned by worker %r: now %s", render.pk, render.worker_name, render.status)
        recovered.append(str(render.pk))
        _render_ended(render)
    lost_cutoff = timezone.now() - timedelta(seconds=max(60.0, settings.RENDER_ABANDONED_AFTER))
    # Renders left waiting (a dispatch that failed after its commit) and templates whose
    # preparation was never queued are handed out again.
    for team in Team.objects.filter(renders__status=Render.Status.QUEUED, renders__enqueued_at__isnull=True).distinct():
        if renders_dispatch(team=team):
            recovered.append(f"team {team.pk} dispatch")
    for template in Template.objects.filter(prep_status=Template.Prep.PENDING, created__lt=lost_cutoff):
        template_prepare_enqueue(template=template)
    # Queued renders whose RQ job vanished (Redis lost its data) are handed out again.
    from rq.job import Job as RQJob

    for render in Render.objects.filter(status=Render.Status.QUEUED, enqueued_at__lt=lost_cutoff).exclude(rq_job_id="").select_related("team"):
        if not RQJob.exists(render.rq_job_id, connection=progress.redis()):
            if Render.objects.filter(pk=render.pk, rq_job_id=render.rq_job_id, status=Render.Status.QUEUED).update(enqueued_at=None, rq_job_id=""):
                recovered.append(str(render.pk))
                renders_dispatch(team=render.team)
    return recovered
