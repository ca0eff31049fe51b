"""The engine interface and the shared render pipeline.

An engine supplies a per-frame function that re-renders the mouth of one template frame for
the audio (``frame_renderer``).  The pipeline
around them (length alignment, streaming decode/encode, progress, cancel, atomic output,
timings, cheap sync estimate) is the same for every engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import align
from ..errors import RenderCancelled, SilentAudioError
from ..media import X264_CRF, X264_PRESET, FrameSpool, VideoWriter, decode_audio, is_silent, read_frames

BATCH = 8  # frames between polls of cancelled() and progress updates


@dataclass
class RenderResult:
    path: str
    frames: int
    fps: float
    duration: float
    width: int
    height: int
    face_fraction: float       # frames with a tracked face / all frames
    sync_score: float | None   # lipsync.evaluate sync r at best lag
    sync_lag: int | None       # frames
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


def energy_track(audio, fps: float, n_frames: int):
    """A crude mouth track from speech-band loudness: opening follows the energy envelope.
    Only the explicit "energy" engine uses it; (opening, width) arrays of shape (n_frames,)."""
    from ..sync import speech_energy

    e = speech_energy(audio.samples, fps, n_frames, audio.sample_rate)
    lo, hi = np.percentile(e, 20), np.percentile(e, 98)
    o = np.clip((e - lo) / max(hi - lo, 1e-6), 0, 1) * 0.3
    return o.astype(np.float32), np.zeros(n_frames, np.float32)


class Engine:
    """Base class: subclasses set ``name`` and implement frame_renderer."""

    name = "base"

    def __init__(self, device: str = "cpu", **options):
        self.device = device
        self.options = options

    # -- to implement -------------------------------------------------------------------
    def frame_renderer(self, template, audio, fps: float, n_frames: int):
        """A callable (frame, template_index, output_index) -> frame for face frames."""
        raise NotImplementedError

    # -- the pipeline -------------------------------------------------------------------
    def render(self, template, audio, out_path, *, fps: float | None = None,
               progress: Callable[[float, str], None] | None = None,
               cancelled: Callable[[], bool] | None = None,
               audio_source=None, preset: str | None = None, crf: int | None = None) -> RenderResult:
        """Render `template` (PreparedTemplate) lip-synced to `audio` (AnalysedAudio) into
        out_path (mp4).  audio_source: optional path of the original audio file, muxed at
        48 kHz instead of the analysed 16 kHz samples."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()

        def report(f, stage):
            if progress is not None:
                progress(float(min(max(f, 0.0), 1.0)), stage)

        def check():
            if cancelled is not None and cancelled():
                raise RenderCancelled()

        check()
        samples = audio.samples
        if samples is None or len(samples) == 0 or is_silent(samples):
            raise SilentAudioError()
        out_fps = float(fps or template.fps)
        n_out = align.n_output_frames(audio.duration, out_fps)
        idx = align.template_indices(n_out, out_fps, template.n_frames, template.fps)

        report(0.0, "analysing")
        t = time.perf_counter()
        per_frame = self.frame_renderer(template, audio, out_fps, n_out)
        timings["analysing"] = time.perf_counter() - t
        report(1.0, "analysing")
        check()

        mux_audio, mux_rate = samples, audio.sample_rate
        if audio_source is not None:
            try:
                mux_audio, mux_rate = decode_audio(audio_source, sample_rate=48000), 48000
            except Exception:
                pass  # the analysed samples are good enough
        W, H = template.width_px, template.height_px
        frames = FrameSpool(read_frames(template.video_path, fps=template.fps),
                            spool=not align.is_monotonic(idx))
        t_decode = t_render = 0.0
        motion = np.full(n_out, np.nan, np.float32)
        prev_crop = None
        faces = 0
        writer = VideoWriter(out_path, W, H, out_fps, audio=mux_audio, audio_rate=mux_rate,
                             preset=preset or X264_PRESET, crf=X264_CRF if crf is None else crf)
        from ..render import single_thread_blas

        blas = single_thread_blas()
        blas.__enter__()
        try:
            t_start = time.perf_counter()
            for j in range(n_out):
                if j % BATCH == 0:
                    check()
                    report(j / n_out, "rendering")
                i = int(idx[j])
                t = time.perf_counter()
                try:
                    frame = frames.get(i)
                except IndexError:  # the stream ended early: hold its last frame
                    frame = frames.get(len(frames) - 1)
                    i = min(i, len(frames) - 1)
                t_decode += time.perf_counter() - t
                if i < template.n_frames and template.has_face[i]:
                    t = time.perf_counter()
                    frame = per_frame(frame, i, j)
                    faces += 1
                    crop = _sync_crop(frame, template.landmarks[i])
                    if prev_crop is not None:
                        motion[j] = float(np.abs(crop - prev_crop).mean())
                    else:
                        motion[j] = 0.0
                    prev_crop = crop
                    t_render += time.perf_counter() - t
                else:
                    prev_crop = None
                writer.write(frame)
            check()
            report(1.0, "rendering")
            report(0.0, "encoding")
            t = time.perf_counter()
            writer.close()
            t_close = time.perf_counter() - t
            t_loop = time.perf_counter() - t_start
        except BaseException:
            writer.abort()
            raise
        finally:
            frames.close()
            blas.__exit__(None, None, None)
        report(1.0, "encoding")
        timings["decode"] = t_decode
        timings["render"] = t_render
        timings["encode"] = t_loop - t_decode - t_render
        timings["total"] = time.perf_counter() - t0
        timings["finalise"] = t_close
        sync = {"r": None, "lag": None}
        if faces >= 10:
            from ..sync import sync_from_series

            s = sync_from_series(motion, samples, out_fps)
            if np.isfinite(s["r"]):
                sync = s
        return RenderResult(
            path=str(out_path), frames=n_out, fps=out_fps, duration=n_out / out_fps,
            width=W // 2 * 2, height=H // 2 * 2, face_fraction=faces / n_out,
            sync_score=sync["r"], sync_lag=sync["lag"], timings=timings)


def _sync_crop(frame, lm, size: int = 32):
    import cv2

    from ..sync import aligned_mouth

    return cv2.cvtColor(aligned_mouth(frame, lm, size), cv2.COLOR_RGB2GRAY).astype(np.float32)
