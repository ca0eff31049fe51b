"""Jobs (batches): one audio on N templates; the job's status derived from its renders."""
from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.access import team_scoped
from accounts.models import Team
from config.storage import media_store_file
from jobs import progress
from jobs.models import Job, Render, Template, job_audio_to, team_media_dir
from jobs.selectors import PRIORITY_RANK
from jobs.services import renders as render_services  # job_cancel, job_retry: through the render state machine
from jobs.services.common import _authorize, job_finished
from jobs.services.dispatch import renders_dispatch
from jobs.services.intake import upload_intake


def job_create(*, team: Team, user, audio_file, template_ids, priority: str = "default", title: str = "",
               webhook_url: str = "") -> Job:
    """One audio on N templates: Job + Renders + render-seconds reservation in one transaction;
    renders go to the queues when it commits."""
    _authorize(team=team, user=user, action="job.create")
    if priority not in PRIORITY_RANK:
        raise ValidationError(_("Unknown priority."), code="priority")
    ceiling = team.plan("priority_ceiling")
    if not quotas.plan_priority_allowed(team=team, priority=priority):
        raise ValidationError(_("Your plan allows priority up to “%(ceiling)s”.") % {"ceiling": ceiling}, code="priority")
    ids = []
    for raw in template_ids or ():
        try:
            ids.append(uuid.UUID(str(raw)))
        except ValueError as e:
            raise ValidationError(_("One or more templates were not found."), code="template") from e
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ValidationError(_("Choose at least one template."), code="template")
    templates = list(team_scoped(Template, actor=team).filter(pk__in=ids))
    if len(templates) != len(ids):
        raise ValidationError(_("One or more templates were not found."), code="template")
    unusable = [t.name for t in templates if t.prep_status == Template.Prep.FAILED]
    if unusable:
        # The rule lives here, not only in the portal's picker, so the API obeys it too.
        raise ValidationError(_("These templates cannot be used: %(names)s (no face was found when they were prepared).")
                              % {"names": ", ".join(unusable)}, code="template")
    templates.sort(key=lambda t: ids.index(t.pk))

    job = Job(id=uuid.uuid4(), team=team, created_by=user, title=title.strip()[:200], priority=priority,
              webhook_url=webhook_url or "")
    with upload_intake(team=team, uploaded_file=audio_file, kind="audio",
                       relative_for=lambda filename: job_audio_to(job, filename)) as upload:
        info, duration = upload.info, upload.duration
        assert info is not None  # upload_intake probed it before yielding
        job.audio_filename, job.audio_size_bytes, job.audio_sha256 = upload.filename[:255], upload.size, upload.sha256
        job.audio.name = media_store_file(local_path=upload.path, name=upload.relative)
        job.audio_duration = duration
        job.audio_info = {"codec": info.audio_codec, "sample_rate": info.audio_sample_rate,
                          "channels": info.audio_channels, "format": info.format_name}
        with transaction.atomic():
            job.save(force_insert=True)
            quotas.storage_charge(team=team, nbytes=upload.size, reason="job_audio", job=job)
            quotas.render_seconds_reserve(team=team, seconds=duration * len(templates), job=job)
            Render.objects.bulk_create([
                Render(job=job, team=team, template=t, template_name=t.name, reserved_seconds=duration,
                       queue_name=priority, log_path=_render_log_relative(job, rid), id=rid)
                for t, rid in ((t, uuid.uuid4()) for t in templates)
            ])
            # robust: see template_upload; waiting renders are dispatched again by the sweep.
            transaction.on_commit(lambda: renders_dispatch(team=team), robust=True)
    return job


def _render_dir_relative(job) -> str:
    return f"{team_media_dir(job.team_id)}/jobs/{job.id}/renders"


def _render_log_relative(job, render_id) -> str:
    return f"{_render_dir_relative(job)}/{render_id}.log"


def job_status_refresh(*, job: Job) -> Job:
    """Derive the job's status from its renders (the one place it is decided)."""
    statuses = list(Render.objects.filter(job=job).values_list("status", flat=True))
    now = timezone.now()
    fields: dict[str, Any] = {}
    if statuses and all(s in Render.FINAL for s in statuses):
        done = sum(s in ("done", "expired") for s in statuses)
        if done == len(statuses) or (done and "failed" not in statuses):  # cancelled on purpose is no failure
            status = Job.Status.DONE
        elif done:
            status = Job.Status.PARTIAL
        elif "failed" in statuses:
            status = Job.Status.FAILED
        else:
            status = Job.Status.CANCELLED
        fields["finished"] = job.finished or now
    else:
        started = any(s in Render.ACTIVE or s in Render.FINAL for s in statuses)
        status = Job.Status.RUNNING if started else Job.Status.QUEUED
        fields["finished"] = None
        if started and not job.started:
            fields["started"] = now
    fields["status"] = status
    changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
    if changed:
        # Conditional on the status not already being the new one: of two workers ending a
        # batch's last renders at once, only one sees its update land and sends job_finished.
        landed = Job.objects.filter(pk=job.pk).exclude(status=status).update(**changed) if "status" in changed \
            else Job.objects.filter(pk=job.pk).update(**changed)
        for k, v in changed.items():
            setattr(job, k, v)
        if landed:
            progress.job_publish(job)
            if "status" in changed and status in Job.FINAL:
                transaction.on_commit(lambda: job_finished.send_robust(sender=Job, job=job))
    return job


def job_cancel(*, job: Job, user) -> Job:
    """Every unfinished render of the batch at once: the queued ones are cancelled in one
    conditional update (each settled, published and taken out of RQ by the state machine), the
    running ones see their cancel flag at their next frame batch."""
    _authorize(team=job.team, user=user, action="job.cancel")
    unfinished = job.renders.exclude(status__in=Render.FINAL)
    progress.cancel_flags_set(list(unfinished.values_list("pk", flat=True)))
    render_services.render_transition(renders=unfinished, to=Render.Status.CANCELLED, from_=Render.Status.QUEUED,
                                      stage="", finished=timezone.now())
    if render_services.render_mark_cancelling(renders=job.renders.all()):
        for render in job.renders.filter(status__in=Render.ACTIVE).select_related("job"):
            progress.render_publish(render)
    job.refresh_from_db()
    return job


def job_retry(*, job: Job, user) -> Job:
    """Every failed or cancelled render of the batch again, all or nothing: a quota refusal
    halfway queues none of them. Nothing to retry is a ValidationError (code "nothing_to_retry")."""
    _authorize(team=job.team, user=user, action="job.retry")
    retryable = list(job.renders.filter(status__in=(Render.Status.FAILED, Render.Status.CANCELLED)).select_related("job", "team"))
    if not retryable:
        raise ValidationError(_("Nothing to retry: no render of this job failed or was cancelled."), code="nothing_to_retry")
    with transaction.atomic():
        for render in retryable:
            render_services.render_retry(render=render, user=None)  # the role was checked once, above
    job.refresh_from_db()
    return job
