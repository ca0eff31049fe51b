"""The samples a first run can try (samples/ in the repository): two presenter videos and one
voice recording. They are added like any upload (probe, poster, preparation, storage quota),
tagged "sample", and only once per team."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile

from jobs.models import Template

SAMPLES_DIR = Path(settings.BASE_DIR) / "samples"
SAMPLE_TAG = "sample"
SAMPLE_TEMPLATES = (("presenter-1.mp4", "Sample presenter 1"), ("presenter-2.mp4", "Sample presenter 2"))
SAMPLE_VOICE = "voice.wav"


def _upload_of(path: Path) -> TemporaryUploadedFile:
    """A copy of a sample as the views hand uploads to the services (a temp file on disk)."""
    upload = TemporaryUploadedFile(path.name, "application/octet-stream", path.stat().st_size, None)
    with open(path, "rb") as src:
        shutil.copyfileobj(src, upload.file)
    upload.file.flush()
    upload.seek(0)
    return upload


def sample_templates(*, team) -> list[Template]:
    return [t for t in Template.objects.filter(team=team) if SAMPLE_TAG in (t.tags or [])]


def samples_seed(*, team, user) -> list[Template]:
    """Add the sample templates the team does not have yet; returns the ones added."""
    from jobs import services

    have = {t.original_filename for t in sample_templates(team=team)}
    added = []
    for filename, name in SAMPLE_TEMPLATES:
        if filename not in have:
            try:
                added.append(services.template_upload(team=team, user=user, uploaded_file=_upload_of(SAMPLES_DIR / filename),
                                                      name=name, tags=[SAMPLE_TAG]))
            except services.DuplicateTemplate:
                pass  # the team uploaded the same video itself: it has it already
    return added


def sample_voice_seconds() -> float:
    from lipsync.probing import probe

    return round(probe(SAMPLES_DIR / SAMPLE_VOICE).duration, 2)


def sample_voice_upload() -> TemporaryUploadedFile:
    """The sample voice recording, as an upload for job_create."""
    return _upload_of(SAMPLES_DIR / SAMPLE_VOICE)
