"""The engine interface and the shared render pipeline.

An engine supplies a per-frame function that re-renders the mouth of one template frame for
the audio (``frame_renderer``).  The pipeline
around them (length alignment, streaming decode/encode, progress, cancel, atomic output,
timings, cheap sync estimate) is the same for every engine.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .. import align
from ..constants import thread_budget
from ..errors import RenderCancelled, SilentAudioError
from ..media import X264_CRF, X264_PRESET, VideoWriter, decode_audio, is_silent, read_frames, video_encoder
from ..spool import FrameSpool

BATCH = 8        # frames between polls of cancelled() and progress updates
PIPE_DEPTH = 6   # frames queued between decode -> mouth -> encode (memory: 2 x this many frames)


def plan_threads() -> int:
    """Threads making frames' geometry (stateless), ahead of the pixel thread: one per two
    cores of this render's budget, 1 to 4.  On 2 cores one plan thread keeps ahead of the
    pixels, and a second only contends with decode and encode: on the square close-ups the
    render took 4-7 % more wall and CPU time with two (median of four runs each)."""
    import os

    cores = thread_budget() or os.cpu_count() or 1
    return max(1, min(4, cores // 2))


def x264_preset() -> str:
    """The libx264 preset: LIPSYNC_X264_PRESET when an operator set one (e.g. "veryfast" for
    smaller files at more CPU, docs/BENCHMARKS.md), else media.X264_PRESET."""
    import os

    return os.environ.get("LIPSYNC_X264_PRESET") or X264_PRESET


@contextlib.contextmanager
def _shut_down(pool: ThreadPoolExecutor) -> Iterator[None]:
    """Stop a pool on the way out: what is still queued is dropped (a cancel or an error)."""
    try:
        yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def pipeline(n: int, fetch: Callable, process: Callable, write: Callable) -> dict[str, float]:
    """Run fetch(j) -> (i, item) in a decode thread, process(j, i, item) -> frame in the
    calling thread and write(frame) in an encode thread, for j in range(n), in order, with
    bounded queues between them (PyAV, cv2 and numpy release the GIL, so the stages overlap).
    An exception in any stage stops the others and is raised here; so is one from process
    (e.g. RenderCancelled).  Returns each stage's busy seconds {"fetch", "process", "write"}."""
    q_in: queue.Queue = queue.Queue(maxsize=PIPE_DEPTH)
    q_out: queue.Queue = queue.Queue(maxsize=PIPE_DEPTH)
    stop = threading.Event()
    errors: list[BaseException] = []
    busy = {"fetch": 0.0, "process": 0.0, "write": 0.0}
    done = object()

    def put(q, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def get(q):
        while not stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return done

    def decoder():
        try:
            for j in range(n):
                t = time.perf_counter()
                i, frame = fetch(j)
                busy["fetch"] += time.perf_counter() - t
                if not put(q_in, (j, i, frame)):
                    return
            put(q_in, done)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors.append(e)
            stop.set()

    def encoder():
        try:
            while True:
                item = get(q_out)
                if item is done:
                    return
                t = time.perf_counter()
                write(item)
                busy["write"] += time.perf_counter() - t
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=decoder, name="lipsync-decode", daemon=True),
               threading.Thread(target=encoder, name="lipsync-encode", daemon=True)]
    for th in threads:
        th.start()
    try:
        while True:
            item = get(q_in)
            if item is done:
                break
            j, i, frame = item
            t = time.perf_counter()
            frame = process(j, i, frame)
            busy["process"] += time.perf_counter() - t
            if not put(q_out, frame):
                break
        put(q_out, done)
        for th in threads:
            th.join()
    except BaseException:
        stop.set()
        for th in threads:
            th.join()
        raise
    if errors:
        raise errors[0]
    return busy


@dataclass
class RenderResult:
    path: str
    frames: int
    fps: float
    duration: float
    width: int
    height: int
    face_fraction: float       # frames with a tracked face / all frames
    sync_score: float | None   # lipsync.sync r at best lag
    sync_lag: int | None       # frames
    sync_z: float | None       # that r against shifted audio (z-score; >= 2: clearly in sync)
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
        budget = thread_budget()
        if budget:  # several workers share this host: OpenCV keeps to this one's share
            import cv2

            cv2.setNumThreads(budget)

    # -- to implement -------------------------------------------------------------------
    def frame_renderer(self, template, audio, fps: float, n_frames: int):
        """A callable (frame, template_index, output_index) -> frame for face frames.

        It may also have a method plan(template_index, output_index) -> geometry: then the
        pipeline calls plan in the decode thread, ahead of the frame's turn, and the callable
        as (frame, template_index, output_index, geometry) in frame order, so the work that
        needs no pixels overlaps the pixel work of earlier frames."""
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
            # the original recording, its channels kept (stereo stays stereo), at 48 kHz
            mux_audio, mux_rate = decode_audio(audio_source, sample_rate=48000, mono=False), 48000
        W, H = template.width_px, template.height_px
        frames = FrameSpool(read_frames(template.video_path, fps=template.fps),
                            keep=align.frames_shown_again(idx, template.n_frames), threads=thread_budget())
        motion = np.full(n_out, np.nan, np.float32)
        prev_crop: np.ndarray | None = None
        faces = 0

        planner = getattr(per_frame, "plan", None)

        def has_face(i: int) -> bool:
            return i < template.n_frames and bool(template.has_face[i])

        def fetch(j: int):
            i = int(idx[j])
            try:
                frame = frames.get(i)
            except IndexError:  # the stream ended early: hold its last frame
                i = min(i, len(frames) - 1)
                frame = frames.get(len(frames) - 1)
            plan = pool.submit(planner, i, j) if planner is not None and has_face(i) else None
            return i, (frame, plan)

        def process(j: int, i: int, item) -> np.ndarray:
            nonlocal prev_crop, faces
            frame, plan = item
            if j % BATCH == 0:
                check()
                report(j / n_out, "rendering")
            if not has_face(i):
                prev_crop = None   # no face: the frame passes through untouched
                return frame
            frame = per_frame(frame, i, j, plan.result()) if plan is not None else per_frame(frame, i, j)
            faces += 1
            crop = _sync_crop(frame, template.landmarks[i])
            motion[j] = float(np.abs(crop - prev_crop).mean()) if prev_crop is not None else 0.0
            prev_crop = crop
            return frame

        from ..render import single_thread_blas

        t_start = time.perf_counter()
        # The geometry of up to PIPE_DEPTH frames is made on plan_threads() threads while
        # earlier frames get their pixels; numpy and cv2 release the GIL.
        pool = ThreadPoolExecutor(max_workers=plan_threads(), thread_name_prefix="lipsync-plan")
        with contextlib.closing(frames), single_thread_blas(), _shut_down(pool):
            writer = VideoWriter(out_path, W, H, out_fps, audio=mux_audio, audio_rate=mux_rate,
                                 preset=preset or x264_preset(), crf=X264_CRF if crf is None else crf,
                                 threads=thread_budget(), codec=video_encoder(self.device))
            try:
                busy = pipeline(n_out, fetch, process, writer.write)
                check()
                report(1.0, "rendering")
                report(0.0, "encoding")
                t = time.perf_counter()
                writer.close()
                t_close = time.perf_counter() - t
            except BaseException:
                writer.abort()
                raise
        t_loop = time.perf_counter() - t_start
        t_decode, t_render = busy["fetch"], busy["process"]
        report(1.0, "encoding")
        # stage times are each stage's busy time; the stages overlap, so they add up to more
        # than "loop" (the wall time of the pipelined frame loop, finalising included)
        timings["decode"] = t_decode
        timings["render"] = t_render
        timings["encode"] = busy["write"] + t_close
        timings["loop"] = t_loop
        timings["total"] = time.perf_counter() - t0
        timings["finalise"] = t_close
        sync = {"r": None, "lag": None, "z": None}
        if faces >= 10:
            from ..sync import sync_from_series

            s = sync_from_series(motion, samples, out_fps)
            if np.isfinite(s["r"]):
                sync = {**s, "z": s["z"] if np.isfinite(s["z"]) else None}
        return RenderResult(
            path=str(out_path), frames=n_out, fps=out_fps, duration=n_out / out_fps,
            width=W // 2 * 2, height=H // 2 * 2, face_fraction=faces / n_out,
            sync_score=sync["r"], sync_lag=sync["lag"], sync_z=sync["z"], timings=timings)


def _sync_crop(frame, lm, size: int = 32):
    import cv2

    from ..sync import aligned_mouth

    return cv2.cvtColor(aligned_mouth(frame, lm, size), cv2.COLOR_RGB2GRAY).astype(np.float32)
