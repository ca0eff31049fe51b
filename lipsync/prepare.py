"""Template preparation: run once per template video, cached in an .npz beside it.

Decodes the template at its own average frame rate, tracks one face with FaceMesh, smooths
the landmarks over time, and keeps what the renderer needs:
- per-frame landmarks and mouth measures, and the speaker's mean lip shape (lipsync.shape);
- the mouth index (lipsync.mouth_index): the template's own mouths with their shapes, and a
  fitness note when they show too little variety to render well;
- a speaker-adapted read-out of the mouth model when the template speaks for at least
  ADAPT_MIN_SECONDS on its own audio track (lipsync.mouth_model.MouthModel.adapt).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import landmarks as L
from . import mouth_index as MI
from . import shape as S
from .atomic import atomic_path
from .errors import NoFaceError, RenderCancelled
from .media import read_frames
from .mouth_index import MouthIndex
from .probing import MediaInfo, probe

VERSION = "prep-5"  # bump when anything stored changes meaning (5: speech.ENCODER_BLOCKS)


@dataclass
class PreparedTemplate:
    video_path: str
    info: MediaInfo
    fps: float                  # frame rate the landmarks are indexed at (the template's)
    landmarks: np.ndarray       # (T, 478, 2) float32 pixels, smoothed; zeros where no face
    has_face: np.ndarray        # (T,) bool
    opening: np.ndarray         # (T,) inner-lip gap / IOD (0 where no face)
    width: np.ndarray           # (T,) mouth width / IOD (0 where no face)
    iod: np.ndarray             # (T,) inter-ocular distance, pixels
    median_width: float         # / IOD, over face frames: the speaker's neutral width
    lip_colour: np.ndarray      # (3,) float32 mean RGB of the lips
    shape_mean: np.ndarray      # (P, 2) the speaker's mean lip shape, face units
    mouth_index: MouthIndex | None
    speaker_weights: np.ndarray | None   # adapted mouth-model read-out, None: generic
    speech_seconds: float       # speech on the template's own audio track
    model_id: str               # the mouth model the index and weights were made with
    timings: dict = field(default_factory=dict)

    @property
    def fitness(self) -> dict:
        """lipsync.mouth_index.MouthIndex.fitness, plus "texts": the notes in English."""
        f = self.mouth_index.fitness() if self.mouth_index is not None else {
            "ok": False, "open_share": 0.0, "teeth_share": 0.0, "notes": ["never_open"]}
        f["texts"] = [MI.FITNESS_TEXT[n] for n in f["notes"]]
        return f

    @property
    def n_frames(self) -> int:
        return int(len(self.has_face))

    @property
    def width_px(self) -> int:
        return int(self.info.width)

    @property
    def height_px(self) -> int:
        return int(self.info.height)

    @property
    def face_fraction(self) -> float:
        return float(self.has_face.mean()) if len(self.has_face) else 0.0

    # -- cache ---------------------------------------------------------------------------
    def save(self, path, *, key: str | None = None) -> None:
        """Write to an .npz atomically (temp file + rename).  key: the source file's cache key
        taken when preparation began (so a file replaced meanwhile is not cached under it)."""
        path = Path(path)
        meta = {
            "version": VERSION,
            "key": key or _cache_key(self.video_path),
            "video_path": str(self.video_path),
            "info": self.info.__dict__,
            "fps": self.fps,
            "median_width": self.median_width,
            "speech_seconds": self.speech_seconds,
            "model_id": self.model_id,
            "n_frames": self.n_frames,
        }
        arrays = dict(
            meta=np.array(json.dumps(meta)),
            landmarks=self.landmarks.astype(np.float32),
            has_face=self.has_face, opening=self.opening.astype(np.float32),
            width=self.width.astype(np.float32), iod=self.iod.astype(np.float32),
            lip_colour=self.lip_colour.astype(np.float32),
        )
        arrays["shape_mean"] = self.shape_mean.astype(np.float32)
        if self.speaker_weights is not None:
            arrays["speaker_weights"] = self.speaker_weights.astype(np.float32)
        if self.mouth_index is not None:
            for k in ("frames", "coeffs", "patches", "shapes", "area", "teeth"):
                arrays["index_" + k] = getattr(self.mouth_index, k)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path, video_path=None) -> PreparedTemplate:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            index = None
            if "index_frames" in z:
                index = MouthIndex(*(z["index_" + k] for k in
                                     ("frames", "coeffs", "patches", "shapes", "area", "teeth")))
            return cls(
                video_path=str(video_path or meta["video_path"]), info=MediaInfo(**meta["info"]),
                fps=meta["fps"], landmarks=z["landmarks"], has_face=z["has_face"],
                opening=z["opening"], width=z["width"], iod=z["iod"],
                median_width=meta["median_width"], lip_colour=z["lip_colour"],
                shape_mean=z["shape_mean"], mouth_index=index,
                speaker_weights=z["speaker_weights"] if "speaker_weights" in z else None,
                speech_seconds=float(meta["speech_seconds"]), model_id=meta["model_id"])


def _cache_key(video_path) -> str:
    st = os.stat(video_path)
    return f"{VERSION}:{st.st_size}:{st.st_mtime_ns}"


def cache_path(video_path, cache_dir=None) -> Path:
    """Where the preparation of `video_path` is cached: beside it, or in cache_dir under a
    name derived from its absolute path."""
    p = Path(video_path)
    if cache_dir is None:
        return p.with_name(p.name + ".lipsync.npz")
    h = hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{p.stem}.{h}.lipsync.npz"


def _try_load(path, video_path) -> PreparedTemplate | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        if meta.get("version") != VERSION or meta.get("key") != _cache_key(video_path):
            return None
        from .mouth_model import model_id

        if meta.get("model_id") != model_id():
            return None
        tpl = PreparedTemplate.load(path, video_path=video_path)
        # a well-formed but inconsistent cache (e.g. a few frames for a long video) is not
        # trusted: its arrays must agree with each other and with the video it describes
        n = tpl.n_frames
        expected = int(tpl.info.frame_count or 0)
        if (tpl.landmarks.shape != (n, L.N_POINTS, 2) or len(tpl.iod) != n
                or meta.get("n_frames") != n or (expected and abs(n - expected) > max(3, 0.05 * expected))):
            return None
        return tpl
    except Exception:  # missing, stale or corrupt cache: prepare again
        return None


def prepare_template(video_path, *, cache_dir=None, progress: Callable | None = None,
                     cancelled: Callable | None = None, use_cache: bool = True,
                     device: str | None = None) -> PreparedTemplate:
    """Prepare (or load from cache) a template video.  Raises NoFaceError, UndecodableMediaError,
    RenderCancelled, MissingComponentError (no mouth model or speech features).
    progress(fraction, "preparing") is called as frames are tracked.  device: where the
    speech features of the template's own audio are computed ("cpu", "cuda")."""
    video_path = str(video_path)
    cpath = cache_path(video_path, cache_dir)
    key = _cache_key(video_path) if os.path.isfile(video_path) else None  # else probe says why
    if use_cache and key:  # a hit needs no probe: the key says the file is the one prepared before
        hit = _try_load(cpath, video_path)
        if hit is not None:
            if progress:
                progress(1.0, "preparing")
            return hit
    info = probe(video_path)
    if not info.has_video:
        from .errors import UndecodableMediaError

        raise UndecodableMediaError(f"The file {Path(video_path).name!r} has no video stream.")

    t0 = time.perf_counter()
    fps = info.fps or 25.0
    total = max(1, info.frame_count)
    every = max(1, int(np.ceil(total / MI.MAX_ENTRIES)))   # frames kept in the mouth index
    lms, has = [], []
    entries = []   # (frame, patch, raw landmarks): a patch is cut with its own frame's points
    lip_samples = []
    with L.FaceTracker() as tracker:
        for i, rgb in enumerate(read_frames(video_path, fps=fps)):
            if i % 8 == 0:
                if cancelled is not None and cancelled():
                    raise RenderCancelled()
                if progress:
                    progress(min(0.95, 0.95 * i / total), "preparing")
            pts = tracker(rgb)
            has.append(pts is not None)
            lms.append(pts if pts is not None else np.zeros((L.N_POINTS, 2), np.float32))
            if pts is None:
                continue
            if i % every == 0:
                entries.append((i, MI.cut_patch(rgb, pts), pts))
            if i % 5 == 0:
                lip_samples.append(_lip_colour(rgb, pts))
    if not has or not any(has):
        raise NoFaceError()
    lm_raw = np.stack(lms)
    has = np.array(has)
    lm = L.smooth(lm_raw, has, sigma=1.0)
    opening, width, iod = L.mouth_measures(lm)
    opening = np.where(has, opening, 0).astype(np.float32)
    width = np.where(has, width, 0).astype(np.float32)
    iod = np.where(has, iod, 0).astype(np.float32)

    from .mouth_model import MouthModel, model_id

    model = MouthModel.load()
    shapes = S.to_face(lm)
    mean = S.robust_mean(shapes, has)
    entry_shapes = S.to_face(np.stack([e[2] for e in entries])) if entries else np.zeros((0, len(S.SHAPE_POINTS), 2))
    index = MI.build_index([(f, p, sh) for (f, p, _), sh in zip(entries, entry_shapes)],
                           model.basis.encode(entry_shapes, mean) if entries else np.zeros((0, model.basis.k)),
                           entry_shapes)
    if progress:
        progress(0.96, "preparing")
    weights, speech_seconds = _speaker_weights(video_path, info, model, shapes, mean, has, fps,
                                               device)
    tpl = PreparedTemplate(
        video_path=video_path, info=info, fps=float(fps), landmarks=lm.astype(np.float32),
        has_face=has, opening=opening, width=width, iod=iod,
        median_width=float(np.median(width[has])),
        lip_colour=np.median(np.stack(lip_samples), axis=0).astype(np.float32)
        if lip_samples else np.array([150, 80, 80], np.float32),
        shape_mean=mean.astype(np.float32), mouth_index=index, speaker_weights=weights,
        speech_seconds=speech_seconds, model_id=model_id(),
        timings={"prepare": time.perf_counter() - t0})
    if use_cache:
        try:
            cpath.parent.mkdir(parents=True, exist_ok=True)
            tpl.save(cpath, key=key)
        except OSError:
            pass  # read-only location: the cache is an optimisation only
    if progress:
        progress(1.0, "preparing")
    return tpl


def _speaker_weights(video_path, info, model, shapes, mean, has, fps, device):
    """(adapted read-out or None, seconds of speech) from the template's own audio track.

    Frames count for the fit where a face is tracked and the audio is speech; with less
    than ADAPT_MIN_SECONDS of them the generic model is used as it is.  The fit itself is
    pulled towards the generic weights (MouthModel.adapt), so more speech means more of the
    speaker's own mapping."""
    from .audio import speech_activity
    from .errors import UndecodableMediaError
    from .media import decode_audio
    from .mouth_model import ADAPT_MIN_SECONDS
    from .speech import whisper_features

    if not info.has_audio:
        return None, 0.0
    try:
        samples = decode_audio(video_path)
    except UndecodableMediaError:
        return None, 0.0
    speech = speech_activity(samples, fps, len(has))
    valid = has & speech
    seconds = float(valid.sum() / fps)
    if seconds < ADAPT_MIN_SECONDS:
        return None, seconds
    feats = whisper_features(samples, device=device or "cpu")
    coeffs = model.basis.encode(shapes, mean)
    return model.adapt(feats, fps, coeffs, valid), seconds


def _lip_colour(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Mean RGB (3,) of the lower lip (between the outer and inner lower contours)."""
    import cv2

    poly = np.concatenate([pts[L.LIPS_OUTER_LOWER], pts[L.LIPS_INNER_LOWER][::-1]])
    x0, y0 = np.floor(poly.min(axis=0)).astype(int)
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        return np.array([150, 80, 80], np.float32)
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    if mask.sum() < 4:
        return crop.reshape(-1, 3).mean(axis=0).astype(np.float32)
    return crop[mask.astype(bool)].mean(axis=0).astype(np.float32)
