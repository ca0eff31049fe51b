"""Renders: the one state machine (`render_transition`, over the table `Render.TRANSITIONS`), the
lifecycle steps on the worker side (claim, finish, fail, requeue) and for people (cancel,
retry), and the recovery of abandoned renders.

Every write of `Render.status` in the code base is a call of `render_transition`
(tests/jobs/test_render_states.py checks that nothing else writes it).
"""
from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.models import Team, UsageEntry
from config.storage import media_delete, media_store_file, media_work_root
from jobs import progress, selectors
from jobs.models import Job, Render, Template
from jobs.services import batches
from jobs.services.common import _authorize, render_finished
from jobs.services.dispatch import _rq_job_remove, renders_dispatch, template_prepare_enqueue

log = logging.getLogger(__name__)

S = Render.Status
SETTLED = (S.DONE, S.FAILED, S.CANCELLED)  # the endings that settle the render-seconds reservation
FINISHED = (S.DONE, S.FAILED)  # the endings that send render_finished (webhooks)


def _phase(status: str) -> str:
    return "final" if status in Render.FINAL else "running" if status in Render.ACTIVE else "waiting"


# --- The state machine ----------------------------------------------------------------------

def render_transition(*, to: str, render: Render | None = None, render_id=None, renders=None, from_=None,
                      where: dict | None = None, settle_seconds: float = 0.0, refresh: bool = True,
                      **fields) -> list[Render]:
    """Move one render (`render` or `render_id`) or a queryset of them (`renders`) to status `to`,
    setting `fields` too. Returns the renders that moved (empty: refused, nothing changed).

    Only the moves in Render.TRANSITIONS are possible: `from_` narrows the allowed sources, and
    a source the table does not allow is a programming error (ValueError). The move is one
    conditional update (`status__in=<allowed sources>` plus `where`): of two writers racing for
    a row, only one sees its update land, so each step below is a claim.

    Then, for each render that moved: an ending (done/failed/cancelled) settles the reservation
    in the ledger (`settle_seconds` used, and a done output's storage charged) in the same
    transaction; after it, the state is published to the job's watchers, the job status is
    derived again when the render changed phase (waiting/running/final), a render leaving the
    queue is removed from RQ, the team's waiting renders are dispatched when a slot freed or a
    render is waiting again, and render_finished goes out for done and failed.

    refresh=False (progress ticks): the instance takes `fields` instead of a reload.
    """
    allowed = Render.allowed_from(to)
    if from_ is not None:
        sources = {from_} if isinstance(from_, str) else set(from_)
        if sources - allowed:
            raise ValueError(f"render status {sorted(sources - allowed)} -> {to!r} is not in Render.TRANSITIONS")
        allowed = sources
    if not allowed:
        raise ValueError(f"no render status may move to {to!r}")
    values = {"status": to, **fields}
    where = where or {}
    with transaction.atomic():
        if renders is None:
            pk = render.pk if render is not None else render_id
            previous = {pk: next(iter(allowed)) if len(allowed) == 1 else None}
            landed = Render.objects.filter(pk=pk, status__in=allowed, **where).update(**values)
            if render is not None and refresh:
                render.refresh_from_db()
            if not landed:
                return []
            if render is None:
                render = Render.objects.select_related("job", "team", "template").get(pk=pk)
            elif not refresh:
                for name, value in values.items():
                    setattr(render, name, value)
                render._saved_status = to
            moved = [render]
        else:
            # A bulk move (a job's renders): the rows are read under a lock (row locks on
            # PostgreSQL; SQLite's IMMEDIATE transactions hold the write lock from BEGIN), so the
            # rows read are exactly the rows the one update moves, and each is settled once.
            previous = dict(renders.filter(status__in=allowed, **where).order_by().select_related(None)
                            .select_for_update().values_list("pk", "status"))
            if not previous:
                return []
            Render.objects.filter(pk__in=list(previous), status__in=allowed).update(**values)
            moved = list(Render.objects.filter(pk__in=list(previous)).select_related("job", "team"))
        if to in SETTLED:
            for r in moved:
                quotas.render_seconds_settle(render=r, actual_seconds=settle_seconds if to == S.DONE else 0.0)
                if to == S.DONE:
                    quotas.usage_record(team=r.team, kind=UsageEntry.STORAGE, amount=r.output_size_bytes,
                                        reason="render_output", job=r.job, render=r)
    _transition_followups(moved, previous=previous, allowed=allowed, to=to)
    return moved


def _transition_followups(moved: list[Render], *, previous: dict, allowed: set, to: str) -> None:
    """What a landed move tells the rest. Errors here (Redis blips) are logged, not raised: the
    render's own state is already recorded, and the periodic sweep (renders_recover_abandoned)
    dispatches whatever a failed dispatch left waiting."""
    jobs: dict[uuid.UUID, Job] = {}
    teams: dict[int, Team] = {}
    for r in moved:
        was = previous.get(r.pk)
        if was == S.QUEUED and to in Render.FINAL:
            _rq_job_remove(r.rq_job_id)
        try:
            progress.render_publish(r)
        except Exception:
            log.exception("render %s: publishing %s failed", r.pk, to)
        if {_phase(s) for s in ([was] if was else allowed)} != {_phase(to)}:
            jobs.setdefault(r.job_id, r.job)
        if to in SETTLED or (to == S.QUEUED and r.enqueued_at is None):
            teams.setdefault(r.team_id, r.team)
    for job in jobs.values():
        try:
            batches.job_status_refresh(job=job)
        except Exception:
            log.exception("job %s: status refresh after a render became %s failed", job.pk, to)
    for team in teams.values():
        if to == S.QUEUED and allowed <= set(Render.FINAL):
            # A retry: its reservation is in the caller's transaction; hand it out once committed.
            transaction.on_commit(partial(renders_dispatch, team=team))
            continue
        try:
            renders_dispatch(team=team)
        except Exception:
            log.exception("team %s: dispatch after a render became %s failed; the sweep will catch up", team.pk, to)
    if to in FINISHED:
        for r in moved:
            render_finished.send_robust(sender=Render, render=r)


# --- Worker side ----------------------------------------------------------------------------

def render_start(*, render_id, rq_job_id: str, worker_name: str = "") -> Render | None:
    """Claim a queued render for this RQ job; None when it was cancelled or belongs to another
    (stale) RQ job, so running a task twice is harmless."""
    now = timezone.now()
    claimed = render_transition(
        render_id=render_id, to=S.PREPARING, from_=S.QUEUED, where={"rq_job_id": rq_job_id},
        stage="preparing", progress=0, started=now, heartbeat=now, worker_name=worker_name[:200],
        error_code="", error_message="", attempts=F("attempts") + 1)
    return claimed[0] if claimed else None


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
    moved = render_transition(
        render=render, to=S.DONE, from_=Render.ACTIVE, where={"rq_job_id": render.rq_job_id},
        settle_seconds=float(result.duration), progress=1.0, stage="", output=relative, output_size_bytes=size,
        output_duration=float(result.duration), quality=quality, timings=dict(result.timings or {}),
        finished=now, heartbeat=now, expires_at=quotas.render_expiry_for(team=render.team, finished=now))
    if not moved and render.output.name != relative:
        # Cancelled or taken over meanwhile: the file is not ours to keep, unless another
        # attempt already finished into the same name.
        media_delete(relative)
    return render


def _num(value):
    return None if value is None else round(float(value), 4)


def render_fail(*, render: Render, code: str, message: str) -> Render:
    render_transition(render=render, to=S.FAILED, stage="", error_code=code[:40], error_message=message,
                      finished=timezone.now())
    return render


def render_mark_cancelled(*, render: Render) -> Render:
    render_transition(render=render, to=S.CANCELLED, stage="", finished=timezone.now())
    return render


def render_retry_pending(*, render: Render, code: str) -> None:
    """An infrastructure error with attempts left: RQ runs the same job again after a backoff
    (its RQ job id stays, so the render is not waiting for dispatch)."""
    render_transition(render=render, to=S.QUEUED, from_=Render.ACTIVE, stage="", progress=0, error_code=code,
                      error_message=_("Attempt %(n)d failed because of a server problem; trying again.") % {"n": render.attempts})


def render_requeue(*, render: Render, count_attempt: bool = True) -> bool:
    """Back to the waiting list (worker shutdown, abandoned render); dispatch picks it up."""
    fields: dict[str, Any] = dict(stage="", progress=0, enqueued_at=None, rq_job_id="", heartbeat=None)
    if not count_attempt:
        fields["attempts"] = F("attempts") - 1
    return bool(render_transition(render=render, to=S.QUEUED, from_=Render.ACTIVE, **fields))


# --- People ---------------------------------------------------------------------------------

def render_cancel(*, render: Render, user) -> Render:
    """Queued: removed at once. Running: the worker sees the flag at its next frame batch."""
    _authorize(team=render.team, user=user, action="job.cancel")
    if render.is_final:
        return render
    progress.cancel_flag_set(render.pk)
    if not render_transition(render=render, to=S.CANCELLED, from_=S.QUEUED, stage="", finished=timezone.now()):
        render_mark_cancelling(renders=Render.objects.filter(pk=render.pk))
        render.refresh_from_db()
        progress.render_publish(render)
    return render


def render_mark_cancelling(*, renders) -> int:
    """Running renders asked to stop: the stage says so until the worker sees the flag."""
    return renders.filter(status__in=Render.ACTIVE).update(stage="cancelling")


def render_retry(*, render: Render, user) -> Render:
    """Run a failed or cancelled render again (reserving its render seconds again)."""
    _authorize(team=render.team, user=user, action="job.retry")
    retryable = (S.FAILED, S.CANCELLED)
    if render.status not in retryable:
        raise ValidationError(_("Only a failed or cancelled render can be retried."), code="state")
    seconds = render.job.audio_duration
    with transaction.atomic():
        quotas.render_seconds_reserve(team=render.team, seconds=seconds, job=render.job, render=render)
        moved = render_transition(
            render=render, to=S.QUEUED, from_=retryable, stage="", progress=0, attempts=0, error_code="",
            error_message="", reserved_seconds=seconds, enqueued_at=None, rq_job_id="", started=None,
            finished=None, heartbeat=None)
        if not moved:
            raise ValidationError(_("Only a failed or cancelled render can be retried."), code="state")
        progress.cancel_flag_clear(render.pk)
    return render


# --- Recovery ------------------------------------------------------------------------------

def renders_recover_abandoned() -> list[str]:
    """Renders whose worker stopped stamping the heartbeat (killed, host lost) go back to the
    queue, or fail after RENDER_MAX_ATTEMPTS. Safe to run from every worker at once: each row
    is taken over with a conditional update (its status and heartbeat as they were read)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RENDER_ABANDONED_AFTER)
    stale = Render.objects.filter(status__in=Render.ACTIVE).filter(
        Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, started__lt=cutoff)).select_related("team", "job")
    recovered = []
    for render in stale:
        outcome: dict[str, Any]
        if progress.cancel_flag_is_set(render.pk):
            to, outcome = S.CANCELLED, {"finished": timezone.now(), "stage": ""}
        elif render.attempts >= settings.RENDER_MAX_ATTEMPTS:
            message = _("The worker running this render stopped, %(n)d times. Try again later or contact support.")
            to, outcome = S.FAILED, {"finished": timezone.now(), "stage": "", "error_code": "abandoned",
                                     "error_message": message % {"n": render.attempts}}
        else:
            to, outcome = S.QUEUED, {"stage": "", "progress": 0, "enqueued_at": None, "rq_job_id": "",
                                     "error_code": "abandoned", "error_message": _("The worker stopped; the render was queued again.")}
        worker = render.worker_name
        if not render_transition(render=render, to=to, from_=render.status, where={"heartbeat": render.heartbeat}, **outcome):
            continue
        log.warning("render %s abandoned by worker %r: now %s", render.pk, worker, render.status)
        recovered.append(str(render.pk))
    lost_cutoff = timezone.now() - timedelta(seconds=max(60.0, settings.RENDER_ABANDONED_AFTER))
    # Renders left waiting (a dispatch that failed after its commit) and templates whose
    # preparation was never queued are handed out again.
    for team in Team.objects.filter(selectors.renders_waiting_for_slot_q("renders__")).distinct():
        if renders_dispatch(team=team):
            recovered.append(f"team {team.pk} dispatch")
    for template in Template.objects.filter(prep_status=Template.Prep.PENDING, created__lt=lost_cutoff):
        template_prepare_enqueue(template=template)
    # Queued renders whose RQ job vanished (Redis lost its data) are handed out again.
    from rq.job import Job as RQJob

    lost = Render.objects.filter(status=S.QUEUED, enqueued_at__lt=lost_cutoff).exclude(rq_job_id="").select_related("team")
    for render in lost:
        if not RQJob.exists(render.rq_job_id, connection=progress.redis()):
            if Render.objects.filter(pk=render.pk, rq_job_id=render.rq_job_id, status=S.QUEUED).update(enqueued_at=None, rq_job_id=""):
                recovered.append(str(render.pk))
                renders_dispatch(team=render.team)
    return recovered
