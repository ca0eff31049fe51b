"""Describing a media file without decoding it: stream headers, display size, frame rate,
duration (probe), and a poster frame.  Opening files within limits is lipsync.media.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .atomic import atomic_path
from .errors import UndecodableMediaError
from .media import _deadline, _open, _past, _pixel_guard, _rotate, _rotation


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # seconds (container or stream, whichever is sane)
    has_video: bool
    has_audio: bool
    width: int  # display size AFTER rotation is applied
    height: int
    rotation: int  # degrees counter-clockwise applied for display: 0/90/180/270
    fps: float  # average frame rate; 0.0 when no video
    variable_frame_rate: bool
    frame_count: int  # estimated when the container does not say
    video_codec: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    format_name: str


def _video_timestamps(container, stream, limit: int = 400, deadline: float | None = None) -> list[float]:
    """Presentation times (s) of the first `limit` video packets, from demuxing only."""
    ts = []
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            ts.append(float(packet.pts * packet.time_base))
        if len(ts) >= limit or _past(deadline):
            break
    return sorted(ts)


def probe(path, *, max_pixels: int | None = None, time_budget: float | None = None) -> MediaInfo:
    """Describe a media file; raises UndecodableMediaError when it has no decodable stream.

    max_pixels: a video whose stream header declares more pixels is refused (MediaLimitError)
    before any frame is decoded.  time_budget: seconds of demuxing for the frame-rate scan.
    """
    name = Path(str(path)).name
    deadline = _deadline(time_budget)
    with _open(path, max_pixels=max_pixels) as c:
        vs = c.streams.video[0] if c.streams.video else None
        as_ = c.streams.audio[0] if c.streams.audio else None
        if vs is None and as_ is None:
            raise UndecodableMediaError(f"The file {name!r} has no audio or video stream.")

        durations = []
        if c.duration is not None and c.duration > 0:
            durations.append(c.duration / av.time_base)
        for s in (vs, as_):
            if s is not None and s.duration and s.time_base:
                durations.append(float(s.duration * s.time_base))
        duration = max(durations) if durations else 0.0

        width = height = rotation = frame_count = 0
        fps = 0.0
        vfr = False
        if vs is not None:
            _pixel_guard(vs, max_pixels, name)
            vs.thread_type = "AUTO"
            try:
                frame = next(c.decode(vs))
            except Exception as e:
                raise UndecodableMediaError(
                    f"The video stream of {name!r} could not be decoded."
                ) from e
            rotation = _rotation(frame)
            width, height = frame.width, frame.height
            if rotation in (90, 270):
                width, height = height, width
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate else 0.0
            try:
                c.seek(0)
                ts = _video_timestamps(c, vs, deadline=deadline)
            except Exception:
                ts = []
            if len(ts) >= 3:
                d = np.diff(ts)
                d = d[d > 0]
                if len(d):
                    vfr = bool((d.max() - d.min()) > 0.25 * np.median(d))
                    if fps <= 0:
                        fps = 1.0 / float(np.median(d))
            frame_count = int(vs.frames or 0)
            if frame_count <= 0 and fps > 0:
                frame_count = int(round(duration * fps))

        sr = ch = None
        if as_ is not None:
            sr = as_.codec_context.sample_rate or None
            ch = as_.codec_context.channels or None

        return MediaInfo(
            duration=float(duration),
            has_video=vs is not None,
            has_audio=as_ is not None,
            width=int(width),
            height=int(height),
            rotation=int(rotation),
            fps=float(fps),
            variable_frame_rate=vfr,
            frame_count=int(frame_count),
            video_codec=vs.codec_context.name if vs is not None else None,
            audio_codec=as_.codec_context.name if as_ is not None else None,
            audio_sample_rate=sr,
            audio_channels=ch,
            format_name=c.format.name,
        )


def tail_decodes(path, duration: float, *, max_pixels: int | None = None, deadline: float | None = None) -> bool | None:
    """True when frames near the end still decode: a truncated file usually declares its full
    duration in the header but has no data there.  None when decoding from the keyframe before
    the end ran past `deadline` (time.monotonic()): keyframes too far apart to check in time."""
    try:
        with _open(path, max_pixels=max_pixels) as c:
            stream = c.streams.video[0]
            _pixel_guard(stream, max_pixels, Path(str(path)).name)
            target = max(0.0, duration * 0.9)
            c.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in c.decode(stream):
                if frame.time is None or frame.time >= target - 2.0:
                    return True
                if _past(deadline):
                    return None
            return False
    except Exception:
        return False


def write_poster(video_path, jpeg_path, *, max_size: int = 640, at: float = 0.5,
                 max_pixels: int | None = None, time_budget: float | None = None,
                 info: MediaInfo | None = None) -> None:
    """Write a JPEG of the frame at fraction `at` of the video's duration, long side <= max_size.

    time_budget: seconds of decoding towards `at`; when they run out (keyframes far apart),
    the latest frame decoded so far is the poster.  max_pixels as in probe().  info: the
    file's probe() when the caller has it (it is not probed again).
    """
    import cv2

    deadline = _deadline(time_budget)
    if info is None:
        info = probe(video_path, max_pixels=max_pixels, time_budget=time_budget)
    if not info.has_video:
        raise UndecodableMediaError(f"The file {Path(str(video_path)).name!r} has no video.")
    img = None
    with _open(video_path, max_pixels=max_pixels) as c:
        vs = c.streams.video[0]
        _pixel_guard(vs, max_pixels, Path(str(video_path)).name)
        target = max(0.0, min(1.0, at)) * info.duration
        try:
            if target > 0:
                c.seek(int(target * av.time_base), any_frame=False, backward=True)
            for frame in c.decode(vs):
                img = frame
                if frame.time is None or frame.time >= target - 1e-3 or _past(deadline):
                    break
        except Exception:
            pass
        if img is None:  # seeking failed: fall back to the first frame
            c.seek(0)
            img = next(c.decode(vs))
        rgb = _rotate(img.to_ndarray(format="rgb24"), _rotation(img))
    h, w = rgb.shape[:2]
    scale = min(1.0, max_size / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise UndecodableMediaError("The poster image could not be encoded.")
    _atomic_write_bytes(jpeg_path, buf.tobytes())


def _atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
