"""Every write of the jobs app. Status changes happen here and only here, so the portal, the
API, the admin and the worker behave the same.

`user=None` means the team itself acts (an API key, or the system): the caller has already
authorised the team; with a user, the user's role in the team is checked (accounts.roles).
The engine (lipsync) is imported lazily: torch/mediapipe must not load at Django start-up.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.access import membership_for, team_scoped
from accounts.models import Team, UsageEntry
from config.storage import (
    media_delete,
    media_folder_delete,
    media_local_path,
    media_store_file,
    media_work_path,
    media_work_root,
)
from jobs import progress
from jobs.models import Job, Render, Template, error_text, job_audio_to, team_media_dir, template_poster_to, template_upload_to
from jobs.selectors import PRIORITY_RANK, renders_waiting_in_order  # the one dispatch order

log = logging.getLogger(__name__)

# Other parts (webhooks, notifications) listen here instead of being called from the worker.
render_finished = Signal()  # sender=Render, render=...
job_finished = Signal()  # sender=Job, job=...

class DuplicateTemplate(ValidationError):
    """The upload has the same bytes as a template the team already has (`.template`)."""

    def __init__(self, template):
        super().__init__(_("This video is already in the library as “%(name)s”.") % {"name": template.name}, code="duplicate")
        self.template = template


TEMPLATE_EXTENSIONS = {"mp4", "m4v", "mov", "mkv", "webm", "avi"}
AUDIO_EXTENSIONS = {"wav", "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "webm", "mp4", "mov", "mkv"}
RENDER_FN = "jobs.tasks.render_run"
PREP_FN = "jobs.tasks.template_prepare_run"


def _authorize(*, team: Team, user, action: str) -> None:
    if user is None:
        return
    membership = membership_for(user, team)
    if membership is None:
        raise Http404("Not found")
    if not membership.can(action):
        raise PermissionDenied(_("Your role in this team does not allow this."))


def _media_path(relative: str) -> Path:
    """Where a file is written and probed before it is stored (MEDIA_ROOT on the filesystem)."""
    return media_work_path(relative)


def _media_discard(relative_folder: str) -> None:
    """A rejected upload or a deleted object: its local working folder and its stored folder."""
    shutil.rmtree(_media_path(relative_folder), ignore_errors=True)
    media_folder_delete(relative_folder)


def _move_upload(uploaded_file, dest: Path) -> None:
    """Move an upload into place without reading it into memory."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp_path = getattr(uploaded_file, "temporary_file_path", None)
    if temp_path is not None:
        uploaded_file.file.flush()
        shutil.move(temp_path(), dest)
        try:
            uploaded_file.close()  # NamedTemporaryFile would delete it; it is already moved
        except FileNotFoundError:
            pass
        return
    with open(dest, "wb") as out:
        for chunk in uploaded_file.chunks():
            out.write(chunk)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def _human_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _tail_decodes(path: Path, duration: float, *, deadline: float) -> bool | None:
    """True when frames near the end still decode: a truncated file usually declares its full
    duration in the header but has no data there. None when the decoding from the keyframe
    before the end ran past `deadline` (time.monotonic()): keyframes too far apart to check."""
    import time

    import av

    pixels = str(settings.TEMPLATE_MAX_PIXELS)
    try:
        with av.open(str(path), options={"max_pixels": pixels}) as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"max_pixels": pixels}
            target = max(0.0, duration * 0.9)
            container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.time is None or frame.time >= target - 2.0:
                    return True
                if time.monotonic() > deadline:
                    return None
            return False
    except Exception:
        return False


def _media_limit_message(e) -> ValidationError:
    """The user's sentence for a lipsync.media.MediaLimitError (a header refused before decoding)."""
    if e.kind == "pixels":
        w, h = e.value
        return ValidationError(
            _("The video is %(w)d×%(h)d pixels; the largest allowed is %(max)s pixels in all (4K).")
            % {"w": w, "h": h, "max": f"{e.limit:,}"}, code="too_big")
    if e.kind == "sample_rate":
        return ValidationError(
            _("The audio declares a sample rate of %(rate)s Hz, which no recording has (%(min)s to %(max)s Hz). "
              "Export it again as WAV, MP3 or M4A.")
            % {"rate": f"{e.value:,}", "min": f"{e.limit[0]:,}", "max": f"{e.limit[1]:,}"}, code="sample_rate")
    if e.kind == "channels":
        return ValidationError(_("The audio declares %(n)s channels; at most %(max)s are supported.")
                               % {"n": e.value, "max": e.limit}, code="channels")
    if e.kind == "duration":
        if e.value is None:
            return ValidationError(_("The audio is longer than your team's limit of %(max)s.")
                                   % {"max": _human_seconds(e.limit)}, code="too_long")
        return ValidationError(
            _("The audio is %(length)s long; your team's limit is %(max)s.")
            % {"length": _human_seconds(e.value), "max": _human_seconds(e.limit)}, code="too_long")
    raise ValueError(f"no message for the media limit {e.kind!r}")


def _too_slow() -> ValidationError:
    return ValidationError(
        _("This video takes too long to read: its keyframes are too far apart. "
          "Export it again with a keyframe every few seconds and upload it again."), code="too_slow")


# --- Templates -----------------------------------------------------------------------------

def template_upload(*, team: Team, user, uploaded_file, name: str = "", tags=(), allow_duplicate: bool = False) -> Template:
    """Store, probe and register a presenter video; then queue its preparation.

    Raises ValidationError (with a message for people) or QuotaExceeded; a rejected upload
    leaves no file behind.
    """
    import time

    from lipsync.errors import UndecodableMediaError
    from lipsync.media import MediaLimitError
    from lipsync.probing import probe, write_poster

    _authorize(team=team, user=user, action="template.upload")
    filename = os.path.basename(uploaded_file.name or "video.mp4")
    size = int(uploaded_file.size or 0)
    if size == 0:
        raise ValidationError(_("The file is empty."), code="empty")
    max_bytes = quotas.upload_max_bytes(team=team, kind="template")
    if size > max_bytes:
        raise ValidationError(
            _("The file is %(size)s; the largest video your team may upload is %(max)s.")
            % {"size": quotas.format_bytes(size), "max": quotas.format_bytes(max_bytes)}, code="too_large")
    if _extension(filename) not in TEMPLATE_EXTENSIONS:
        raise ValidationError(_("Upload a video file (MP4, MOV, MKV, WebM or AVI)."), code="extension")
    quotas.storage_check(team=team, incoming_bytes=size)

    template = Template(
        id=uuid.uuid4(), team=team, uploaded_by=user, name=(name or Path(filename).stem)[:200],
        tags=_clean_tags(tags), original_filename=filename[:255], size_bytes=size,
    )
    relative = template_upload_to(template, filename)
    folder = os.path.dirname(relative)
    try:
        _move_upload(uploaded_file, _media_path(relative))
        template.sha256 = _sha256(_media_path(relative))
        duplicate = Template.objects.filter(team=team, sha256=template.sha256).first()
        if duplicate is not None and not allow_duplicate:
            raise DuplicateTemplate(duplicate)
        # One time budget for everything the web process decodes of this upload; the stream
        # header's size is checked before any frame is decoded.
        deadline = time.monotonic() + settings.UPLOAD_INSPECT_SECONDS
        try:
            info = probe(_media_path(relative), max_pixels=settings.TEMPLATE_MAX_PIXELS,
                         time_budget=settings.UPLOAD_INSPECT_SECONDS)
        except MediaLimitError as e:
            raise _media_limit_message(e)
        except UndecodableMediaError:
            raise ValidationError(
                _("This file is not a video we can read: it may be corrupt, truncated or not a video at all."),
                code="undecodable")
        _template_validate(team=team, info=info, path=_media_path(relative), deadline=deadline)
        poster = template_poster_to(template, "poster.jpg")
        try:
            write_poster(_media_path(relative), _media_path(poster), max_pixels=settings.TEMPLATE_MAX_PIXELS,
                         time_budget=max(0.5, deadline - time.monotonic()))
        except Exception:
            raise ValidationError(_("The video could not be decoded: it may be corrupt or truncated."), code="undecodable")
        template.file.name = media_store_file(local_path=_media_path(relative), name=relative)
        template.poster.name = media_store_file(local_path=_media_path(poster), name=poster)
        template.duration, template.fps, template.variable_frame_rate = info.duration, info.fps, info.variable_frame_rate
        template.width, template.height, template.rotation = info.width, info.height, info.rotation
        template.video_codec, template.audio_codec = info.video_codec or "", info.audio_codec or ""
        template.has_audio, template.container = info.has_audio, (info.format_name or "")[:60]
        with transaction.atomic():
            template.save(force_insert=True)
            quotas.storage_charge(team=team, nbytes=size, reason="template_upload")
            # robust: a queueing failure after the commit is logged, never discards the saved
            # file (a pending template is enqueued again by renders_recover_abandoned).
            transaction.on_commit(lambda: template_prepare_enqueue(template=template), robust=True)
    except BaseException:
        _media_discard(folder)
        raise
    return template


def _template_validate(*, team: Team, info, path: Path, deadline: float) -> None:
    if not info.has_video:
        raise ValidationError(_("The file has no video stream."), code="no_video")
    if info.duration <= 0 or info.frame_count <= 0:
        raise ValidationError(_("The video has zero length."), code="zero_length")
    max_seconds = float(team.plan("template_max_seconds"))
    if info.duration > max_seconds:
        raise ValidationError(
            _("The video is %(length)s long; your team's limit is %(max)s.")
            % {"length": _human_seconds(info.duration), "max": _human_seconds(max_seconds)}, code="too_long")
    if info.width * info.height > settings.TEMPLATE_MAX_PIXELS:
        raise ValidationError(
            _("The video is %(w)d×%(h)d pixels; the largest allowed is %(max)s pixels in all (4K).")
            % {"w": info.width, "h": info.height, "max": f"{settings.TEMPLATE_MAX_PIXELS:,}"}, code="too_big")
    tail = _tail_decodes(path, info.duration, deadline=deadline)
    if tail is None:
        raise _too_slow()
    if not tail:
        raise ValidationError(_("The video is truncated or corrupt: its end cannot be decoded."), code="truncated")


def _clean_tags(tags) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    seen = []
    for tag in tags or ():
        tag = str(tag).strip().lower()[:40]
        if tag and tag not in seen:
            seen.append(tag)
    return seen[:20]


def template_update(*, template: Template, user, name: str | None = None, tags=None) -> Template:
    _authorize(team=template.team, user=user, action="template.edit")
    if name is not None and name.strip():
        template.name = name.strip()[:200]
    if tags is not None:
        template.tags = _clean_tags(tags)
    template.save(update_fields=["name", "tags"])
    return template


def template_delete(*, template: Template, user) -> None:
    """Delete the row and its folder; finished videos made from it stay (template_name kept)."""
    _authorize(team=template.team, user=user, action="template.delete")
    folder = os.path.dirname(template.file.name) if template.file else None
    with transaction.atomic():
        quotas.storage_release(team=template.team, nbytes=template.size_bytes, reason="template_delete", note=str(template.pk))
        template.delete()
        if folder is not None:
            transaction.on_commit(lambda: _media_discard(folder))


def template_prepare_enqueue(*, template: Template) -> None:
    import django_rq

    django_rq.get_queue("prep").enqueue(PREP_FN, str(template.pk), job_timeout=max(600, int(template.duration * 10)))


def template_prepare(*, template_id) -> Template | None:
    """Find the face in every frame once (cached next to the video); runs on the "prep" queue."""
    from jobs.library_live import template_publish
    from lipsync.errors import BadInputError, NoFaceError
    from lipsync.prepare import prepare_template

    template = Template.objects.filter(pk=template_id).first()
    if template is None:
        return None
    Template.objects.filter(pk=template.pk).update(prep_status=Template.Prep.RUNNING, prep_error="")
    template_publish(template)
    try:
        # Remote storage: the copy (and the engine's prep cache beside it) stays on this worker host.
        prepared = prepare_template(str(media_local_path(template.file)))
    except NoFaceError:
        fields = {"prep_status": Template.Prep.FAILED, "prep_face_fraction": 0.0,
                  "prep_error": _("No face was found in this video. Use a video where one person faces the camera.")}
    except BadInputError as e:
        fields = {"prep_status": Template.Prep.FAILED, "prep_error": _error_message(e)}
    except Exception:
        log.exception("template preparation failed for %s", template.pk)
        Template.objects.filter(pk=template.pk).update(
            prep_status=Template.Prep.FAILED, prep_error=_("Preparation failed because of a server problem. Try again later."))
        template_publish(template)
        raise
    else:
        fitness = prepared.fitness
        fields = {"prep_status": Template.Prep.READY, "prep_face_fraction": float(prepared.face_fraction),
                  "prep_fitness": {"ok": bool(fitness["ok"]), "notes": list(fitness["notes"]),
                                   "open_share": round(float(fitness["open_share"]), 3),
                                   "teeth_share": round(float(fitness["teeth_share"]), 3),
                                   "speech_seconds": round(float(prepared.speech_seconds), 2),
                                   "speaker_adapted": prepared.speaker_weights is not None}}
    Template.objects.filter(pk=template.pk).update(**fields)
    template.refresh_from_db()
    template_publish(template)
    return template


# --- Jobs ----------------------------------------------------------------------------------

def job_create(*, team: Team, user, audio_file, template_ids, priority: str = "default", title: str = "",
               webhook_url: str = "") -> Job:
    """One audio on N templates: Job + Renders + render-seconds reservation in one transaction;
    renders go to the queues when it commits."""
    from lipsync.constants import SAMPLE_RATE
    from lipsync.errors import SilentAudioError, UndecodableMediaError
    from lipsync.media import MediaLimitError, decode_audio, is_silent
    from lipsync.probing import probe

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
        except ValueError:
            raise ValidationError(_("One or more templates were not found."), code="template")
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

    filename = os.path.basename(audio_file.name or "audio.wav")
    size = int(audio_file.size or 0)
    if size == 0:
        raise ValidationError(_("The audio file is empty."), code="empty")
    max_bytes = quotas.upload_max_bytes(team=team, kind="audio")
    if size > max_bytes:
        raise ValidationError(_("The audio file is larger than %(max)s.") % {"max": quotas.format_bytes(max_bytes)}, code="too_large")
    if _extension(filename) not in AUDIO_EXTENSIONS:
        raise ValidationError(_("Upload an audio file (WAV, MP3, M4A, AAC, FLAC, OGG or Opus)."), code="extension")
    quotas.storage_check(team=team, incoming_bytes=size)

    job = Job(id=uuid.uuid4(), team=team, created_by=user, title=title.strip()[:200], priority=priority,
              webhook_url=webhook_url or "", audio_filename=filename[:255], audio_size_bytes=size)
    relative = job_audio_to(job, filename)
    folder = os.path.dirname(relative)
    try:
        _move_upload(audio_file, _media_path(relative))
        max_seconds = float(team.plan("audio_max_seconds"))
        try:
            info = probe(_media_path(relative), max_pixels=settings.TEMPLATE_MAX_PIXELS,
                         time_budget=settings.UPLOAD_INSPECT_SECONDS)
            if not info.has_audio:
                raise ValidationError(_("The file has no audio track."), code="no_audio")
            # Header checks first, then at most max_seconds of samples are decoded.
            samples = decode_audio(_media_path(relative), max_seconds=max_seconds)
        except MediaLimitError as e:
            raise _media_limit_message(e)
        except UndecodableMediaError:
            raise ValidationError(_("This file is not audio we can read: it may be corrupt or truncated."), code="undecodable")
        except SilentAudioError:  # an audio stream that holds no samples at all
            raise ValidationError(_("The audio is empty or silent, so there is no speech to lip-sync."), code="silent")
        duration = len(samples) / SAMPLE_RATE
        if is_silent(samples):  # the engine's one silence rule (too short counts as silent)
            raise ValidationError(_("The audio is empty or silent, so there is no speech to lip-sync."), code="silent")
        del samples
        if duration > max_seconds:
            raise ValidationError(
                _("The audio is %(length)s long; your team's limit is %(max)s.")
                % {"length": _human_seconds(duration), "max": _human_seconds(max_seconds)}, code="too_long")
        job.audio_sha256 = _sha256(_media_path(relative))
        job.audio.name = media_store_file(local_path=_media_path(relative), name=relative)
        job.audio_duration = duration
        job.audio_info = {"codec": info.audio_codec, "sample_rate": info.audio_sample_rate,
                          "channels": info.audio_channels, "format": info.format_name}
        with transaction.atomic():
            job.save(force_insert=True)
            quotas.storage_charge(team=team, nbytes=size, reason="job_audio", job=job)
            quotas.render_seconds_reserve(team=team, seconds=duration * len(templates), job=job)
            Render.objects.bulk_create([
                Render(job=job, team=team, template=t, template_name=t.name, reserved_seconds=duration,
                       queue_name=priority, log_path=_render_log_relative(job, rid), id=rid)
                for t, rid in ((t, uuid.uuid4()) for t in templates)
            ])
            # robust: see template_upload; waiting renders are dispatched again by the sweep.
            transaction.on_commit(lambda: renders_dispatch(team=team), robust=True)
    except BaseException:
        _media_discard(folder)
        raise
    return job


def _render_dir_relative(job) -> str:
    return f"{team_media_dir(job.team_id)}/jobs/{job.id}/renders"


def _render_log_relative(job, render_id) -> str:
    return f"{_render_dir_relative(job)}/{render_id}.log"


def job_status_refresh(*, job: Job) -> Job:
    """Derive the job's status from its renders (the one place it is decided)."""
    statuses = list(Render.objects.filter(job=job).values_list("status", flat=True))
    now = timezone.now()
    fields = {}
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
    _authorize(team=job.team, user=user, action="job.cancel")
    for render in job.renders.exclude(status__in=Render.FINAL):
        render_cancel(render=render, user=None)
    job.refresh_from_db()
    return job


# --- Queueing ------------------------------------------------------------------------------

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
        in_flight = Render.objects.filter(team=team).filter(
            Q(status__in=Render.ACTIVE) | Q(status=Render.Status.QUEUED, enqueued_at__isnull=False)).count()
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
            retry=Retry(max=retries, interval=list(settings.RENDER_RETRY_INTERVALS) or 0) if retries else None,
            result_ttl=3600, failure_ttl=7 * 24 * 3600, description=f"render {render.pk} ({render.template_name})",
        )
    except Exception:
        Render.objects.filter(pk=render.pk, rq_job_id=rq_job_id).update(rq_job_id="", enqueued_at=None)
        raise
    render.rq_job_id, render.queue_name = rq_job_id, queue_name


def _rq_job_remove(rq_job_id: str) -> None:
    if not rq_job_id:
        return
    from rq.job import Job as RQJob

    try:
        RQJob.fetch(rq_job_id, connection=progress.redis()).delete(remove_from_queue=True)
    except Exception:
        pass  # already gone, or running (then the cancel flag stops it)


# --- Render lifecycle (worker side) ----------------------------------------------------------

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
    job_status_refresh(job=render.job)
    progress.render_publish(render)
    return render


def render_execute(*, render_id, rq_job_id: str, engine_provider, worker_name: str = "",
                   stop_requested=lambda: False) -> str:
    """Run one render end to end on this worker. Returns "done" / "failed" / "cancelled" /
    "requeued" / "skipped"; raises (for RQ's retry with backoff) on an infrastructure error
    while attempts remain."""
    from lipsync.errors import BadInputError, RenderCancelled

    render = render_start(render_id=render_id, rq_job_id=rq_job_id, worker_name=worker_name)
    if render is None:
        log.info("render %s: not claimable by %s (cancelled, finished or stale); skipped", render_id, rq_job_id)
        return "skipped"
    render_logger, handler = _render_log_open(render)
    cancel = progress.CancelPoll(render.pk, stop_requested=stop_requested)
    try:
        with progress.Heartbeat(render.pk):
            render_logger.info("attempt %d on worker %s (RQ job %s)", render.attempts, worker_name, rq_job_id)
            result = _render_with_engine(render, engine_provider=engine_provider, cancel=cancel, render_logger=render_logger)
        render_finish(render=render, result=result)
        render_logger.info("done: %s (%.2f s, %d frames)", render.output.name, result.duration, result.frames)
        return "done"
    except RenderCancelled:
        if stop_requested() and not progress.cancel_flag_is_set(render.pk):
            render_logger.info("worker shutting down: render goes back to the queue")
            render_requeue(render=render, count_attempt=False)
            return "requeued"
        render_logger.info("cancelled")
        render_mark_cancelled(render=render)
        return "cancelled"
    except BadInputError as e:
        render_logger.info("failed (%s): %s", e.code, e)
        render_fail(render=render, code=e.code, message=_error_message(e))
        return "failed"
    except Exception as e:
        # The team's log gets the attempt and the stage; the traceback (code, server paths)
        # goes to the server log only (TeamLogFormatter drops it from the team's file).
        render_logger.exception("attempt %d failed%s because of a server problem (%s); the details are in the server log",
                                render.attempts, f" while {render.stage}" if render.stage else "", type(e).__name__)
        from rq.timeouts import JobTimeoutException

        timed_out = isinstance(e, JobTimeoutException)
        if render.attempts >= settings.RENDER_MAX_ATTEMPTS:
            message = (_("The render took longer than its time limit, %(n)d times.") if timed_out
                       else _("The render failed because of a server problem, %(n)d times. Try again later or contact support."))
            render_fail(render=render, code="timeout" if timed_out else "internal", message=message % {"n": render.attempts})
            return "failed"
        render_retry_pending(render=render, code="timeout" if timed_out else "internal")
        raise
    finally:
        render_logger.logger.removeHandler(handler)
        handler.close()
        _render_log_store(render)


def _render_with_engine(render: Render, *, engine_provider, cancel, render_logger):
    from lipsync.errors import BadInputError, RenderCancelled
    from lipsync.prepare import prepare_template

    template = render.template
    if template is None or not template.file or not template.file.storage.exists(template.file.name):
        raise BadInputError(_("The template video of this render was deleted."))
    reporter = progress.ProgressReporter(render)
    prepared = prepare_template(str(media_local_path(template.file)), progress=reporter, cancelled=cancel)
    if cancel():
        raise RenderCancelled()
    audio = audio_analysis_get(job=render.job)
    render_logger.info("audio analysed (sha256 %s, %.2f s)", render.job.audio_sha256[:12], audio.duration)
    engine = engine_provider()
    out_dir = _media_path(_render_dir_relative(render.job))
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path = out_dir / f"{render.pk}.mp4"
    # The original recording is muxed at 48 kHz (the analysis copy is 16 kHz, band-limited).
    return engine.render(prepared, audio, str(out_path), progress=reporter, cancelled=cancel,
                         audio_source=str(media_local_path(render.job.audio)))


class TeamLogFormatter(logging.Formatter):
    """The render log the team reads (viewers included): messages only, never a traceback,
    which shows code and server paths. The record keeps its traceback for the server log."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        return self.formatMessage(record)


def _render_log_open(render: Render):
    """A per-render log file the team can read (appended across attempts, which may run on
    other hosts: with remote storage the stored log is fetched first and stored again after)."""
    name = render.log_path or _render_log_relative(render.job, render.pk)
    path = _media_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and default_storage.exists(name):
        with default_storage.open(name, "rb") as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(TeamLogFormatter("%(asctime)s %(levelname)s %(message)s"))
    # One adapter over a shared logger: loggers are never freed, so one per render would grow a
    # long-lived worker; the handler only takes this render's records.
    handler.addFilter(lambda record, rid=str(render.pk): getattr(record, "render_id", None) == rid)
    base = logging.getLogger("jobs.render")
    base.setLevel(logging.INFO)
    base.addHandler(handler)
    render_logger = logging.LoggerAdapter(base, {"render_id": str(render.pk)})
    if not render.log_path:
        render.log_path = _render_log_relative(render.job, render.pk)
        Render.objects.filter(pk=render.pk).update(log_path=render.log_path)
    return render_logger, handler


def _render_log_store(render: Render) -> None:
    if not render.log_path:
        return
    try:
        media_store_file(local_path=_media_path(render.log_path), name=render.log_path, overwrite=True)
    except Exception:  # a lost log must not turn a finished render into a failed one
        log.warning("could not store the log of render %s", render.pk, exc_info=True)


def audio_analysis_path(sha256: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "cache" / "audio" / f"{sha256}.npz"


AUDIO_ANALYSES_KEY = "mp:stats:audio-analyses"


def audio_analysis_get(*, job: Job):
    """The job's analysed audio, computed once per audio (keyed by sha256) and shared by every
    render and worker: a Redis lock makes concurrent workers wait for the first one."""
    from lipsync.audio import AnalysedAudio, analyse_audio

    path = audio_analysis_path(job.audio_sha256)

    def load():
        if path.exists():
            try:
                return AnalysedAudio.load(path)
            except Exception:
                log.warning("unreadable audio analysis cache %s; analysing again", path, exc_info=True)
        return None

    cached = load()
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = progress.redis()
    with conn.lock(f"mp:audio-lock:{job.audio_sha256}", timeout=900, blocking_timeout=1800):
        cached = load()
        if cached is not None:
            return cached
        audio = analyse_audio(str(media_local_path(job.audio)))
        audio.save(path)
        conn.incr(AUDIO_ANALYSES_KEY)
        return audio


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
        job_status_refresh(job=render.job)
        renders_dispatch(team=render.team)
    except Exception:
        log.exception("render %s: follow-up after %s failed; the sweep will catch up", render.pk, render.status)


def _error_message(error) -> str:
    return error_text(getattr(error, "code", ""), str(error))


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
        job_status_refresh(job=render.job)
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
