"""Upload acceptance shared by template and audio uploads: moving the upload into place,
hashing it, and the sentences for media the engine refuses."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

TEMPLATE_EXTENSIONS = {"mp4", "m4v", "mov", "mkv", "webm", "avi"}
AUDIO_EXTENSIONS = {"wav", "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "webm", "mp4", "mov", "mkv"}


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

