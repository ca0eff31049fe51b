"""Templates: a team's presenter videos (upload, edit, delete, preparation on the "prep" queue)."""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.models import Team
from config.storage import media_local_path, media_store_file
from jobs.models import Template, template_poster_to, template_upload_to
from jobs.services.common import _authorize, _error_message, _media_discard, _media_path
from jobs.services.dispatch import template_prepare_enqueue
from jobs.services.intake import upload_intake

log = logging.getLogger(__name__)


class DuplicateTemplate(ValidationError):
    """The upload has the same bytes as a template the team already has (`.template`)."""

    def __init__(self, template):
        super().__init__(_("This video is already in the library as “%(name)s”.") % {"name": template.name}, code="duplicate")
        self.template = template



def template_upload(*, team: Team, user, uploaded_file, name: str = "", tags=(), allow_duplicate: bool = False) -> Template:
    """Store, probe and register a presenter video; then queue its preparation.

    Raises ValidationError (with a message for people) or QuotaExceeded; a rejected upload
    leaves no file behind (services.intake).
    """
    import time

    from lipsync.probing import write_poster

    _authorize(team=team, user=user, action="template.upload")
    template = Template(id=uuid.uuid4(), team=team, uploaded_by=user, tags=_clean_tags(tags))

    def refuse_duplicate(sha256: str) -> None:
        duplicate = Template.objects.filter(team=team, sha256=sha256).first()
        if duplicate is not None and not allow_duplicate:
            raise DuplicateTemplate(duplicate)

    with upload_intake(team=team, uploaded_file=uploaded_file, kind="template", on_hashed=refuse_duplicate,
                       relative_for=lambda filename: template_upload_to(template, filename)) as upload:
        info = upload.info
        assert info is not None  # upload_intake probed it before yielding
        poster = template_poster_to(template, "poster.jpg")
        try:  # the probe's MediaInfo is passed on: the poster does not probe the file again
            write_poster(upload.path, _media_path(poster), max_pixels=settings.TEMPLATE_MAX_PIXELS, info=info,
                         time_budget=max(0.5, upload.deadline - time.monotonic()))
        except Exception as e:
            raise ValidationError(_("The video could not be decoded: it may be corrupt or truncated."), code="undecodable") from e
        template.name = (name or Path(upload.filename).stem)[:200]
        template.original_filename, template.size_bytes, template.sha256 = upload.filename[:255], upload.size, upload.sha256
        template.file.name = media_store_file(local_path=upload.path, name=upload.relative)
        template.poster.name = media_store_file(local_path=_media_path(poster), name=poster)
        template.duration, template.fps, template.variable_frame_rate = info.duration, info.fps, info.variable_frame_rate
        template.width, template.height, template.rotation = info.width, info.height, info.rotation
        template.video_codec, template.audio_codec = info.video_codec or "", info.audio_codec or ""
        template.has_audio, template.container = info.has_audio, (info.format_name or "")[:60]
        with transaction.atomic():
            template.save(force_insert=True)
            quotas.storage_charge(team=team, nbytes=upload.size, reason="template_upload")
            # robust: a queueing failure after the commit is logged, never discards the saved
            # file (a pending template is enqueued again by renders_recover_abandoned).
            transaction.on_commit(lambda: template_prepare_enqueue(template=template), robust=True)
    return template


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
    folder = os.path.dirname(template.file.name) if template.file and template.file.name else None
    with transaction.atomic():
        # the sizes as stored now, row locked: a web preview charged since this row was read counts
        sizes = Template.objects.select_for_update().filter(pk=template.pk).values_list("size_bytes", "preview_size_bytes").first()
        quotas.storage_release(team=template.team, nbytes=sum(sizes or (0,)), reason="template_delete", note=str(template.pk))
        template.delete()
        if folder is not None:
            transaction.on_commit(lambda: _media_discard(folder))



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
        from lipsync.mouth_model import ADAPT_MIN_SECONDS

        fitness = prepared.fitness
        fields = {"prep_status": Template.Prep.READY, "prep_face_fraction": float(prepared.face_fraction),
                  "prep_fitness": {"ok": bool(fitness["ok"]), "notes": list(fitness["notes"]),
                                   "open_share": round(float(fitness["open_share"]), 3),
                                   "teeth_share": round(float(fitness["teeth_share"]), 3),
                                   "speech_seconds": round(float(prepared.speech_seconds), 2),
                                   "speaker_adapted": prepared.speaker_weights is not None,
                                   "adapt_min_seconds": ADAPT_MIN_SECONDS}}
    Template.objects.filter(pk=template.pk).update(**fields)
    template.refresh_from_db()
    template_publish(template)
    return template

