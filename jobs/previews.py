"""Web previews of templates: a small H.264 copy for the browser when the original cannot play
there (HEVC from phones, ProRes, MKV...). Rendering always uses the original.

Made on the "prep" queue just before the face preparation (jobs.tasks.template_prepare_run), through
the engine's media API (lipsync.media: PyAV decode, libx264 encode).
"""
from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext as _

from accounts import quotas
from config.storage import media_local_path, media_store_file, media_work_path
from jobs.models import Template, template_preview_to

log = logging.getLogger(__name__)

# What Chromium, Firefox and Safari all play in a <video>, by file extension.
WEB_PLAYABLE = {"mp4": {"h264"}, "m4v": {"h264"}, "mov": {"h264"}, "webm": {"vp8", "vp9", "av1"}}
PREVIEW_MAX_SIDE = 720  # the long side, in pixels
PREVIEW_AUDIO_RATE = 44100

CODEC_NAMES = {
    "h264": "H.264", "hevc": "HEVC (H.265)", "vp8": "VP8", "vp9": "VP9", "av1": "AV1", "mpeg4": "MPEG-4",
    "prores": "ProRes", "mjpeg": "Motion JPEG", "aac": "AAC", "mp3": "MP3", "opus": "Opus", "vorbis": "Vorbis",
    "flac": "FLAC", "ac3": "AC-3", "eac3": "E-AC-3", "alac": "ALAC",
}


def codec_name(codec: str) -> str:
    """A codec as people know it: "hevc" -> "HEVC (H.265)", "pcm_s16le" -> "PCM"."""
    codec = (codec or "").lower()
    if codec.startswith("pcm_"):
        return "PCM"
    return CODEC_NAMES.get(codec, codec.upper())


def container_name(template: Template) -> str:
    """The file type from the upload's name (the demuxer's "mov,mp4,m4a,3gp,3g2,mj2" says nothing)."""
    suffix = Path(template.original_filename or template.file.name or "").suffix.lstrip(".")
    return suffix.upper() or (template.container or "").split(",")[0].upper()


def web_playable(template: Template) -> bool:
    suffix = Path(template.file.name or "").suffix.lstrip(".").lower()
    return (template.video_codec or "").lower() in WEB_PLAYABLE.get(suffix, set())


def web_preview_state(template: Template) -> str:
    """"original" (plays as it is), "preview" (the H.264 copy plays), "making" (on its way), or
    "none" (it will not come). The preview is made before the face preparation, so a template
    whose preparation has ended without one has none."""
    if web_playable(template):
        return "original"
    if template.preview:
        return "preview"
    return "making" if template.prep_status in (Template.Prep.PENDING, Template.Prep.RUNNING) else "none"


def write_web_preview(src, dst, *, max_side: int = PREVIEW_MAX_SIDE) -> Path:
    """An H.264/AAC mp4 of `src`, its long side at most `max_side`, at the source's frame rate."""
    import cv2

    from lipsync.errors import LipsyncError
    from lipsync.media import VideoWriter, decode_audio, read_frames
    from lipsync.probing import probe

    info = probe(src)
    scale = min(1.0, max_side / max(info.width, info.height))
    width, height = max(2, round(info.width * scale)) // 2 * 2, max(2, round(info.height * scale)) // 2 * 2
    audio = None
    if info.has_audio:
        try:
            audio = decode_audio(src, sample_rate=PREVIEW_AUDIO_RATE)
        except LipsyncError:
            audio = None  # a preview without sound rather than none
    with VideoWriter(dst, width, height, info.fps or 25.0, audio=audio, audio_rate=PREVIEW_AUDIO_RATE,
                     preset="veryfast", crf=28) as writer:
        for rgb in read_frames(src):
            if rgb.shape[1] != width or rgb.shape[0] != height:
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(rgb)
    return Path(dst)


def template_preview_ensure(template: Template) -> Template:
    """Make the template's web preview when its original cannot play in a browser (idempotent;
    a failure is logged and leaves the template as it was: the page then says why)."""
    if web_playable(template) or template.preview:
        return template
    name = template_preview_to(template, "preview.mp4")
    local = media_work_path(name)
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_web_preview(media_local_path(template.file), local)
        size = local.stat().st_size
        stored = media_store_file(local_path=local, name=name, overwrite=True)
    except Exception:
        log.exception("web preview failed for template %s", template.pk)
        local.unlink(missing_ok=True)
        return template
    with transaction.atomic():  # charged only if the template is still there (a delete may have won)
        if Template.objects.filter(pk=template.pk).update(preview=stored, preview_size_bytes=size):
            quotas.storage_record(team=template.team, nbytes=size, reason="template_preview", note=str(template.pk))
    template.preview.name, template.preview_size_bytes = stored, size
    return template


def web_preview_note(template: Template) -> str:
    """Why the page's player shows a preview, or cannot play; empty when the original plays."""
    state = web_preview_state(template)
    codec = codec_name(template.video_codec)
    if state == "preview":
        return _("Shown here as a smaller H.264 preview, because browsers cannot play %(codec)s; "
                 "videos are rendered from the original.") % {"codec": codec}
    if state == "making":
        return _("Browsers cannot play %(codec)s: a smaller preview is being made. "
                 "Videos are rendered from the original either way.") % {"codec": codec}
    if state == "none":
        return _("Browsers cannot play %(codec)s, so this video cannot be shown here.") % {"codec": codec}
    return ""
