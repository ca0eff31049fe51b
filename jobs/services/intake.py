"""The one upload intake, for presenter videos and batch audio alike.

`upload_intake` checks the upload (size, extension, storage room), moves it into place, hashes
it once, probes it once (lipsync.probing) and, for audio, decodes it once; the caller gets an
`Upload` with the MediaInfo and the measured duration, so nothing downstream opens the file
again to learn what it already knows. PyAV stays inside lipsync/.

`engine_errors` is the one place where the engine's errors (MediaLimitError, UndecodableMedia,
SilentAudio, any LipsyncError) and ValueErrors become a Django ValidationError with a stable
code, which the portal shows as a form error and the API turns into its 400 JSON.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import quotas
from accounts.models import Team
from jobs.services.common import _media_discard, _media_path

if TYPE_CHECKING:  # lipsync (PyAV) loads lazily, inside the functions that probe
    from django.utils.functional import _StrPromise

    from lipsync.probing import MediaInfo

TEMPLATE_EXTENSIONS = {"mp4", "m4v", "mov", "mkv", "webm", "avi"}
AUDIO_EXTENSIONS = {"wav", "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "webm", "mp4", "mov", "mkv"}



class KindTexts(TypedDict):
    """What differs between the two kinds of upload: their names, limits and sentences."""

    default_name: str
    extensions: set[str]
    empty: _StrPromise
    too_large: _StrPromise
    extension: _StrPromise
    undecodable: _StrPromise


KINDS: dict[str, KindTexts] = {
    "template": {
        "default_name": "video.mp4", "extensions": TEMPLATE_EXTENSIONS,
        "empty": _("The file is empty."),
        "too_large": _("The file is %(size)s; the largest video your team may upload is %(max)s."),
        "extension": _("Upload a video file (MP4, MOV, MKV, WebM or AVI)."),
        "undecodable": _("This file is not a video we can read: it may be corrupt, truncated or not a video at all."),
    },
    "audio": {
        "default_name": "audio.wav", "extensions": AUDIO_EXTENSIONS,
        "empty": _("The audio file is empty."),
        "too_large": _("The audio file is larger than %(max)s."),
        "extension": _("Upload an audio file (WAV, MP3, M4A, AAC, FLAC, OGG or Opus)."),
        "undecodable": _("This file is not audio we can read: it may be corrupt or truncated."),
    },
}
SILENT = _("The audio is empty or silent, so there is no speech to lip-sync.")


@dataclass
class Upload:
    """An accepted upload, in place under MEDIA_ROOT but not stored yet."""

    filename: str  # the client's name, without folders
    size: int
    relative: str  # its name under MEDIA_ROOT
    sha256: str = ""
    info: MediaInfo | None = None  # set by upload_intake (the one probe) before it yields
    duration: float = 0.0  # audio: the decoded length (the header only estimates it)
    deadline: float = 0.0  # time.monotonic() by which the web process stops decoding this upload

    @property
    def path(self) -> Path:
        return _media_path(self.relative)


def upload_check(*, team: Team, uploaded_file, kind: str) -> tuple[str, int]:
    """The acceptance check both uploads share, before a byte is moved: name, size, extension,
    the team's upload limit and storage room. Returns (filename, size)."""
    texts = KINDS[kind]
    filename = os.path.basename(uploaded_file.name or texts["default_name"])
    size = int(uploaded_file.size or 0)
    if size == 0:
        raise ValidationError(texts["empty"], code="empty")
    max_bytes = quotas.upload_max_bytes(team=team, kind=kind)
    if size > max_bytes:
        raise ValidationError(texts["too_large"] % {"size": quotas.format_bytes(size), "max": quotas.format_bytes(max_bytes)},
                              code="too_large")
    if _extension(filename) not in texts["extensions"]:
        raise ValidationError(texts["extension"], code="extension")
    quotas.storage_check(team=team, incoming_bytes=size)
    return filename, size


@contextmanager
def upload_intake(*, team: Team, uploaded_file, kind: str, relative_for: Callable[[str], str],
                  on_hashed: Callable[[str], None] | None = None) -> Iterator[Upload]:
    """Check, move into place, hash once, probe once (audio: decode once) and apply the kind's
    rules; yields the Upload. Whatever fails, here or in the caller's block, leaves no file
    behind. `on_hashed(sha256)` may refuse the upload before it is probed (a duplicate)."""
    filename, size = upload_check(team=team, uploaded_file=uploaded_file, kind=kind)
    upload = Upload(filename=filename, size=size, relative=relative_for(filename))
    try:
        _move_upload(uploaded_file, upload.path)
        upload.sha256 = _sha256(upload.path)
        if on_hashed is not None:
            on_hashed(upload.sha256)
        # One time budget for everything the web process decodes of this upload; the stream
        # header's size is checked before any frame is decoded.
        upload.deadline = time.monotonic() + settings.UPLOAD_INSPECT_SECONDS
        with engine_errors(kind=kind):
            from lipsync.probing import probe

            upload.info = probe(upload.path, max_pixels=settings.TEMPLATE_MAX_PIXELS, time_budget=settings.UPLOAD_INSPECT_SECONDS)
            if kind == "template":
                _video_rules(team=team, upload=upload)
            else:
                _audio_rules(team=team, upload=upload)
        yield upload
    except BaseException:
        _media_discard(os.path.dirname(upload.relative))
        raise


def _video_rules(*, team: Team, upload: Upload) -> None:
    from lipsync.probing import tail_decodes

    info = upload.info
    assert info is not None  # probed by upload_intake before the rules run
    if not info.has_video:
        raise ValidationError(_("The file has no video stream."), code="no_video")
    if info.duration <= 0 or info.frame_count <= 0:
        raise ValidationError(_("The video has zero length."), code="zero_length")
    _length_rule(seconds=info.duration, limit=float(team.plan("template_max_seconds")), kind="video")
    if info.width * info.height > settings.TEMPLATE_MAX_PIXELS:
        raise _too_big(width=info.width, height=info.height, limit=settings.TEMPLATE_MAX_PIXELS)
    tail = tail_decodes(upload.path, info.duration, max_pixels=settings.TEMPLATE_MAX_PIXELS, deadline=upload.deadline)
    if tail is None:
        raise _too_slow()
    if not tail:
        raise ValidationError(_("The video is truncated or corrupt: its end cannot be decoded."), code="truncated")


def _audio_rules(*, team: Team, upload: Upload) -> None:
    from lipsync.constants import SAMPLE_RATE
    from lipsync.media import decode_audio, is_silent

    assert upload.info is not None  # probed by upload_intake before the rules run
    if not upload.info.has_audio:
        raise ValidationError(_("The file has no audio track."), code="no_audio")
    max_seconds = float(team.plan("audio_max_seconds"))
    # Header checks first, then at most max_seconds of samples are decoded (the only decode).
    samples = decode_audio(upload.path, max_seconds=max_seconds)
    upload.duration = len(samples) / SAMPLE_RATE
    if is_silent(samples):  # the engine's one silence rule (too short counts as silent)
        raise ValidationError(SILENT, code="silent")
    del samples
    _length_rule(seconds=upload.duration, limit=max_seconds, kind="audio")


def _length_rule(*, seconds: float, limit: float, kind: str) -> None:
    if seconds > limit:
        raise _too_long(seconds=seconds, limit=limit, kind=kind)


def _too_long(*, seconds: float, limit: float, kind: str) -> ValidationError:
    text = _("The video is %(length)s long; your team's limit is %(max)s.") if kind == "video" else \
        _("The audio is %(length)s long; your team's limit is %(max)s.")
    return ValidationError(text % {"length": _human_seconds(seconds), "max": _human_seconds(limit)}, code="too_long")


def _too_big(*, width: int, height: int, limit: int) -> ValidationError:
    return ValidationError(
        _("The video is %(w)d×%(h)d pixels; the largest allowed is %(max)s pixels in all (4K).")
        % {"w": width, "h": height, "max": f"{limit:,}"}, code="too_big")


@contextmanager
def engine_errors(*, kind: str = "template") -> Iterator[None]:
    """The one translation of engine errors (and ValueErrors) into ValidationError."""
    from lipsync.errors import LipsyncError, SilentAudioError, UndecodableMediaError
    from lipsync.media import MediaLimitError

    try:
        yield
    except ValidationError:
        raise
    except MediaLimitError as e:
        raise _media_limit_message(e) from e
    except UndecodableMediaError as e:
        raise ValidationError(KINDS[kind]["undecodable"], code="undecodable") from e
    except SilentAudioError as e:  # an audio stream that holds no samples at all
        raise ValidationError(SILENT, code="silent") from e
    except LipsyncError as e:
        raise ValidationError(str(e), code=getattr(e, "code", None) or "bad_input") from e
    except ValueError as e:
        code = getattr(e, "code", None)
        raise ValidationError(str(e), code=code if isinstance(code, str) else "invalid") from e


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


def _media_limit_message(e) -> ValidationError:
    """The user's sentence for a lipsync.media.MediaLimitError (a header refused before decoding)."""
    if e.kind == "pixels":
        w, h = e.value
        return _too_big(width=w, height=h, limit=e.limit)
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
        return _too_long(seconds=e.value, limit=e.limit, kind="audio")
    raise ValueError(f"no message for the media limit {e.kind!r}")


def _too_slow() -> ValidationError:
    return ValidationError(
        _("This video takes too long to read: its keyframes are too far apart. "
          "Export it again with a keyframe every few seconds and upload it again."), code="too_slow")
