"""Media I/O with PyAV: opening files within limits, audio decoding, streaming frame reading
and writing.  Describing a file without decoding it (probe, poster) is lipsync.probing.

Conventions: video frames are ``(H, W, 3) uint8`` RGB arrays, already rotated to their
display orientation; audio is ``(N,) float32`` mono in [-1, 1].  Nothing here holds a whole
video in memory: frames are decoded and encoded one at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .atomic import temp_path_for
from .constants import MIN_AUDIO_SECONDS, SAMPLE_RATE, SILENCE_DB
from .errors import BadInputError, SilentAudioError, UndecodableMediaError

# Sample rates outside this range are not recordings: a WAV header may declare 1 Hz, and
# resampling 40 KB of it to 16 kHz is gigabytes of float32.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 64


class MediaLimitError(BadInputError):
    """The file's header (or its decoding) exceeds a limit the caller set: refused before the
    expensive part.  ``kind`` is one of "sample_rate", "channels", "duration", "pixels";
    ``value`` what the file has (None when unknown), ``limit`` the bound."""

    code = "media_limit"

    def __init__(self, kind: str, value, limit, message: str):
        super().__init__(message)
        self.kind, self.value, self.limit = kind, value, limit


def _deadline(time_budget: float | None) -> float | None:
    return None if time_budget is None else time.monotonic() + float(time_budget)


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def _pixel_guard(stream, max_pixels: int | None, name: str) -> None:
    """Refuse a video by its stream header before any frame is decoded, and make the decoder
    refuse any later frame larger than the limit (a size change inside the stream)."""
    if max_pixels is None:
        return
    w, h = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if w * h > max_pixels:
        raise MediaLimitError("pixels", (w, h), max_pixels,
                              f"The video of {name!r} is {w}x{h} pixels; the limit is {max_pixels} pixels.")
    stream.codec_context.options = {**(stream.codec_context.options or {}), "max_pixels": str(int(max_pixels))}


def _open(path, *, max_pixels: int | None = None, **kwargs):
    """av.open that turns every failure into UndecodableMediaError.

    max_pixels also bounds the frames FFmpeg decodes while it opens the file (stream-info
    probing decodes several H.264 frames): larger ones fail there instead of being allocated.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise UndecodableMediaError(f"The file {Path(path).name!r} does not exist.")
    if os.path.getsize(path) == 0:
        raise UndecodableMediaError(f"The file {Path(path).name!r} is empty.")
    if max_pixels is not None:
        kwargs["options"] = {**kwargs.get("options", {}), "max_pixels": str(int(max_pixels))}
    try:
        return av.open(path, **kwargs)
    except Exception as e:  # av raises many types (InvalidDataError, OSError, ValueError...)
        raise UndecodableMediaError(
            f"The file {Path(path).name!r} is not a readable audio or video file."
        ) from e


def _rotation(frame) -> int:
    """Counter-clockwise display rotation of a decoded frame, normalised to 0/90/180/270."""
    try:
        r = int(round(frame.rotation or 0))
    except Exception:
        r = 0
    return (round(r / 90) * 90) % 360


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return img
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90))


def decode_audio(path, *, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None,
                 mono: bool = True) -> np.ndarray:
    """Decode the first audio stream of any file (audio or video) to float32.

    Returns (N,) float32 in [-1, 1] at `sample_rate` Hz, or with mono=False (C, N) keeping
    the source's channels (C = 1 or 2; more are mixed down to stereo), for the output's
    soundtrack.  Raises UndecodableMediaError when
    there is no decodable audio stream, SilentAudioError when it holds no samples.

    Before anything is decoded, the stream header's sample rate and channel count must be
    plausible (MIN_SAMPLE_RATE..MAX_SAMPLE_RATE, at most MAX_CHANNELS), and with max_seconds
    its declared duration must fit; decoding then stops as soon as the output passes
    max_seconds (MediaLimitError, kind "duration").  Memory stays bounded by the output:
    each decoded block is resampled and mixed down on its own.
    """
    name = Path(str(path)).name
    chunks = []
    total = 0
    cap = None if max_seconds is None else int(max_seconds * sample_rate) + 1
    with _open(path) as c:
        if not c.streams.audio:
            raise UndecodableMediaError(f"The file {name!r} has no audio stream.")
        stream = c.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or 0)
        channels = int(stream.codec_context.channels or 0)
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise MediaLimitError("sample_rate", rate, (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
                                  f"The audio of {name!r} declares a sample rate of {rate} Hz; "
                                  f"recordings are between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz.")
        if channels > MAX_CHANNELS:
            raise MediaLimitError("channels", channels, MAX_CHANNELS,
                                  f"The audio of {name!r} declares {channels} channels; at most {MAX_CHANNELS} are read.")
        if max_seconds is not None:
            declared = _declared_seconds(c, stream)
            # Headers estimate (VBR MP3 without an index); the decoded length decides the rest.
            if declared is not None and declared > max_seconds * 1.1 + 1:
                raise MediaLimitError("duration", declared, max_seconds,
                                      f"The audio of {name!r} is {declared:.0f} s long; the limit is {max_seconds:.0f} s.")
        # Mixing to mono is done here (mean of channels) rather than by swresample, whose
        # default downmix matrices depend on the channel layout and may attenuate.
        out_channels = 1 if mono else min(max(channels, 1), 2)
        resampler = av.AudioResampler(format="fltp", rate=sample_rate,
                                      layout=None if mono or channels <= 2 else "stereo")

        def keep(out) -> None:
            nonlocal total
            block = out.to_ndarray().astype(np.float32, copy=False)
            chunks.append(block.mean(axis=0) if mono else block[:out_channels])
            total += chunks[-1].shape[-1]
            if cap is not None and total > cap:
                raise MediaLimitError("duration", None, max_seconds,
                                      f"The audio of {name!r} is longer than {max_seconds:.0f} s.")

        try:
            for frame in c.decode(stream):
                frame.pts = None  # some files have broken pts; resampler needs none
                for out in resampler.resample(frame):
                    keep(out)
            for out in resampler.resample(None):
                keep(out)
        except MediaLimitError:
            raise
        except Exception as e:
            if not chunks:
                raise UndecodableMediaError(
                    f"The audio of {name!r} could not be decoded."
                ) from e
            # truncated file: keep what decoded
    if not chunks:
        raise SilentAudioError(f"The audio of {name!r} is empty.")
    audio = np.concatenate(chunks, axis=-1).astype(np.float32, copy=False)
    chunks.clear()  # the blocks' memory goes before the clip below
    if audio.size == 0:
        raise SilentAudioError(f"The audio of {name!r} is empty.")
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio


def _declared_seconds(container, stream) -> float | None:
    """The longest duration the container or the stream header declares, if any."""
    found = []
    if container.duration is not None and container.duration > 0:
        found.append(container.duration / av.time_base)
    if stream.duration and stream.time_base:
        found.append(float(stream.duration * stream.time_base))
    return max(found) if found else None


def is_silent(audio: np.ndarray, *, threshold_db: float = SILENCE_DB,
              sample_rate: int = SAMPLE_RATE) -> bool:
    """The one silence rule: True when `audio` (N,) is shorter than MIN_AUDIO_SECONDS or its
    loudest 50 ms window is below threshold_db dBFS (RMS)."""
    if audio.size < MIN_AUDIO_SECONDS * sample_rate:
        return True
    win = sample_rate // 20
    n = audio.size // win
    if n == 0:
        rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    else:
        blocks = audio[: n * win].astype(np.float64).reshape(n, win)
        rms = float(np.sqrt((blocks ** 2).mean(axis=1)).max())
    return 20 * np.log10(rms + 1e-12) < threshold_db


def read_frames(path, *, fps: float | None = None, max_frames: int | None = None,
                ) -> Iterator[np.ndarray]:
    """Yield display-oriented RGB frames (H, W, 3) uint8 at a constant frame rate.

    fps None = the stream's average rate.  Variable-rate input is resampled like ffmpeg's
    fps filter: output frame j shows the latest source frame at or before j/fps (+half a
    frame), duplicating or dropping source frames as needed.
    """
    name = Path(str(path)).name
    with _open(path) as c:
        if not c.streams.video:
            raise UndecodableMediaError(f"The file {name!r} has no video stream.")
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        out_fps = float(fps or (float(rate) if rate else 25.0))
        start = None
        prev = None  # (rgb, t)
        prev_t = None
        j = 0
        src_dt = 1.0 / float(rate) if rate else 1.0 / out_fps
        try:
            for i, frame in enumerate(c.decode(vs)):
                t = frame.time if frame.time is not None else i * src_dt
                if start is None:
                    start = t
                t -= start
                if prev is not None:
                    while (j + 0.5) / out_fps <= t:
                        yield prev
                        j += 1
                        if max_frames is not None and j >= max_frames:
                            return
                prev = _rotate(frame.to_ndarray(format="rgb24"), _rotation(frame))
                if prev_t is not None and t > prev_t:
                    src_dt = min(src_dt, t - prev_t) if i < 3 else src_dt
                prev_t = t
        except UndecodableMediaError:
            raise
        except av.error.FFmpegError as e:
            if prev is None:
                raise UndecodableMediaError(f"The video of {name!r} could not be decoded.") from e
            # truncated: end the stream at the last good frame
        if prev is None:
            raise UndecodableMediaError(f"The video of {name!r} has no decodable frames.")
        end = (prev_t or 0.0) + src_dt
        while (j + 0.5) / out_fps <= end:
            yield prev
            j += 1
            if max_frames is not None and j >= max_frames:
                return
        if j == 0:
            yield prev


def count_frames(path, *, fps: float | None = None) -> int:
    """Number of frames read_frames would yield, by demuxing timestamps (no decoding)."""
    from .probing import probe

    info = probe(path)
    out_fps = float(fps or info.fps or 25.0)
    with _open(path) as c:
        vs = c.streams.video[0]
        ts = []
        for packet in c.demux(vs):
            if packet.pts is not None and packet.size:
                ts.append(float(packet.pts * packet.time_base))
    if not ts:
        return 0
    ts.sort()
    d = np.diff(ts)
    dt = float(np.median(d)) if len(d) else 1.0 / out_fps
    end = ts[-1] - ts[0] + dt
    return max(1, int(np.floor(end * out_fps + 0.5)))


def fps_fraction(fps: float) -> Fraction:
    """A rational frame rate close to `fps`, with a small denominator (e.g. 29.97 -> 30000/1001)."""
    f = Fraction(fps).limit_denominator(1001)
    return f


# libx264 "ultrafast" at CRF 20: encoding is most of a CPU render's cost, and ultrafast is about
# twice as fast as "veryfast" for files about 3x larger at the same visual quality (measured on
# 720x1280: RTF 0.18 vs 0.38 for the encode alone). Callers may ask for a slower preset.
X264_PRESET = "ultrafast"
X264_CRF = 20


def _nvenc_options(cq: int) -> dict[str, str]:
    """NVENC settings that match libx264 at X264_CRF in quality: constant quality cq."""
    return {"preset": "p4", "rc": "vbr", "cq": str(cq), "b": "0"}


_ENCODERS: dict[str, str] = {}


def video_encoder(device: str | None) -> str:
    """The H.264 encoder for renders on `device`: h264_nvenc on a CUDA device when this
    FFmpeg has it and it opens (a driver and a GPU are there), else libx264.  The choice is
    made once per device and logged."""
    import logging

    key = str(device or "cpu")
    if key not in _ENCODERS:
        choice, why = "libx264", "CPU device"
        if key.startswith("cuda"):
            why = "h264_nvenc is not in this FFmpeg build"
            if "h264_nvenc" in av.codecs_available:
                try:
                    ctx = av.CodecContext.create("h264_nvenc", "w")
                    ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
                    ctx.time_base = Fraction(1, 25)
                    ctx.open()
                    choice, why = "h264_nvenc", "NVENC opened"
                except Exception as e:  # no GPU or driver behind the build's encoder
                    why = f"h264_nvenc did not open ({e})"
        _ENCODERS[key] = choice
        logging.getLogger(__name__).info("video encoder for %s: %s (%s)", key, choice, why)
    return _ENCODERS[key]


class VideoWriter:
    """Encode H.264 yuv420p + AAC into an mp4 (+faststart), atomically.

    Frames go to a temp file in the destination directory, renamed into place by close();
    abort() (or an exception inside ``with``) deletes it.  Audio is interleaved as frames
    are written so the muxer never buffers the whole file.

    frames: (H, W, 3) uint8 RGB; odd sizes are cropped to even (bottom/right pixel).
    audio: (N,) float32 mono or (C, N) with C = 1 or 2 channels, at audio_rate, or None.
    codec: "libx264" (preset, crf) or "h264_nvenc" (NVIDIA's encoder; crf is its cq).
    """

    def __init__(self, out_path, width: int, height: int, fps: float, *,
                 audio: np.ndarray | None = None, audio_rate: int = SAMPLE_RATE,
                 preset: str = X264_PRESET, crf: int = X264_CRF, threads: int = 0,
                 codec: str = "libx264"):
        self.out_path = Path(out_path)
        self.width = int(width) // 2 * 2
        self.height = int(height) // 2 * 2
        if self.width < 2 or self.height < 2:
            raise UndecodableMediaError("The video is too small to encode.")
        self.fps = float(fps)
        self.rate = fps_fraction(self.fps)
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = temp_path_for(self.out_path)
        self.frames = 0
        self._closed = False
        self.container = av.open(str(self.tmp_path), "w", format="mp4",
                                 options={"movflags": "+faststart"})
        try:
            vs = self.container.add_stream(codec, rate=self.rate)
            vs.width, vs.height = self.width, self.height
            vs.pix_fmt = "yuv420p"
            vs.codec_context.time_base = 1 / self.rate
            vs.options = (_nvenc_options(crf) if codec == "h264_nvenc"
                          else {"preset": preset, "crf": str(crf)})
            vs.codec_context.thread_count = threads
            self.vstream = vs
            self.audio = None
            if audio is not None and np.asarray(audio).size:
                audio = np.asarray(audio, np.float32)
                audio = audio[None, :] if audio.ndim == 1 else audio[:2]
                self.layout = "stereo" if audio.shape[0] == 2 else "mono"
                a = self.container.add_stream("aac", rate=int(audio_rate))
                a.layout = self.layout
                a.bit_rate = (128000 if audio_rate >= 32000 else 64000) * audio.shape[0]
                self.astream = a
                self.audio = np.ascontiguousarray(audio)
                self.audio_rate = int(audio_rate)
                self._audio_pos = 0
        except Exception:
            self.abort()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def _write_audio_until(self, seconds: float | None) -> None:
        if self.audio is None:
            return
        n = self.audio.shape[1]
        end = n if seconds is None else min(n, int(seconds * self.audio_rate))
        while self._audio_pos < end:
            stop = min(end, self._audio_pos + 4096)
            chunk = np.ascontiguousarray(self.audio[:, self._audio_pos:stop])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
            frame.sample_rate = self.audio_rate
            frame.pts = self._audio_pos
            frame.time_base = Fraction(1, self.audio_rate)
            for p in self.astream.encode(frame):
                self.container.mux(p)
            self._audio_pos = stop

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame (cropped to the even output size)."""
        if rgb.shape[0] != self.height or rgb.shape[1] != self.width:
            rgb = rgb[: self.height, : self.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        for p in self.vstream.encode(frame):
            self.container.mux(p)
        self.frames += 1
        # keep audio ~1 s ahead of video so the interleaving buffer stays small
        self._write_audio_until(self.frames / self.fps + 1.0)

    def close(self) -> Path:
        """Flush, finalise (+faststart) and rename into place; returns the final path."""
        if self._closed:
            return self.out_path
        try:
            for p in self.vstream.encode(None):
                self.container.mux(p)
            if self.audio is not None:
                self._write_audio_until(None)
                for p in self.astream.encode(None):
                    self.container.mux(p)
            self.container.close()
            self._closed = True
            os.replace(self.tmp_path, self.out_path)
        except BaseException:
            self.abort()
            raise
        return self.out_path

    def abort(self) -> None:
        """Close and delete the temp file; the destination is left untouched."""
        self._closed = True
        try:
            self.container.close()
        except Exception:
            pass
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass
