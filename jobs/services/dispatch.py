"""Queueing: waiting renders handed to RQ under each team's concurrency cap, RQ job ids,
time limits, removal from RQ; and the "prep" queue for templates."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.utils import timezone

from accounts.models import Team
from jobs import progress, selectors
from jobs.models import Render, Template
from jobs.selectors import renders_waiting_in_order  # the one dispatch order

RENDER_FN = "jobs.tasks.render_run"
PREP_FN = "jobs.tasks.template_prepare_run"


def template_prepare_enqueue(*, template: Template) -> None:
    import django_rq

    django_rq.get_queue("prep").enqueue(PREP_FN, str(template.pk), job_timeout=max(600, int(template.duration * 10)))



def render_timeout(*, render: Render) -> int:
    return int(settings.RENDER_TIMEOUT_BASE + settings.RENDER_TIMEOUT_PER_AUDIO_SECOND * render.job.audio_duration)


def renders_dispatch(*, team: Team) -> int:
    """Hand the team's waiting renders to RQ, up to its concurrency cap (fair share: one team's
    big batch waits here, outside RQ, so it cannot starve another team's small one).
    Waiting renders go best priority first, then oldest first."""
    from rq import Retry  # noqa: F401  (fail early if rq is missing)

    lock = progress.redis().lock(f"mp:dispatch:{team.pk}", timeout=30, blocking_timeout=30)
    released = 0
    with lock:
        cap = int(team.plan("max_concurrent_renders"))
        in_flight = selectors.renders_in_flight(team=team).count()  # the one meaning of "in flight"
        free = cap - in_flight
        if free <= 0:
            return 0
        for render in renders_waiting_in_order(team=team)[:free]:
            render_enqueue(render=render)
            released += 1
    return released


def render_enqueue(*, render: Render) -> None:
    """Put one render on its priority queue with a fresh RQ job id (so a stale copy of an
    earlier attempt can recognise itself and step aside)."""
    import django_rq
    from rq import Retry

    rq_job_id = f"render-{render.pk}-{secrets.token_hex(4)}"
    queue_name = render.job.priority if render.job.priority in settings.RENDER_QUEUES else "default"
    updated = Render.objects.filter(pk=render.pk, status=Render.Status.QUEUED).update(
        rq_job_id=rq_job_id, queue_name=queue_name, enqueued_at=timezone.now())
    if not updated:
        return
    retries = max(0, settings.RENDER_MAX_ATTEMPTS - 1)
    try:
        django_rq.get_queue(queue_name).enqueue(
            RENDER_FN, str(render.pk), job_id=rq_job_id, job_timeout=render_timeout(render=render),
            retry=Retry(max=retries, interval=_retry_intervals(retries)) if retries else None,
            result_ttl=3600, failure_ttl=7 * 24 * 3600, description=f"render {render.pk} ({render.template_name})",
        )
    except Exception:
        Render.objects.filter(pk=render.pk, rq_job_id=rq_job_id).update(rq_job_id="", enqueued_at=None)
        raise
    render.rq_job_id, render.queue_name = rq_job_id, queue_name


def _retry_intervals(retries: int) -> list[int] | int:
    """RENDER_RETRY_INTERVALS for `retries` retries, first retry first. RQ counts an interval
    list from its end (with 3 intervals and 2 retries the first retry waited the second
    interval, 60 s instead of 10 s), so the list is cut to the retries it serves."""
    intervals = list(settings.RENDER_RETRY_INTERVALS)[:retries]
    return intervals or 0


def _rq_job_remove(rq_job_id: str) -> None:
    if not rq_job_id:
        return
    from rq.job import Job as RQJob

    try:
        RQJob.fetch(rq_job_id, connection=progress.redis()).delete(remove_from_queue=True)
    except Exception:
        pass  # already gone, or running (then the cancel flag stops it)

