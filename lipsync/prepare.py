"""Template preparation: run once per template video, cached in an .npz beside it.

Decodes the template at its own average frame rate, tracks one face with FaceMesh, smooths
the landmarks over time, and keeps what the renderer needs: per-frame landmarks and mouth
measures, and a "mouth atlas" (the template's most open mouth, to fill a mouth opened wider
than the template ever had it at that frame).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import landmarks as L
from .errors import NoFaceError, RenderCancelled
from .media import MediaInfo, probe, read_frames

VERSION = "prep-3"  # bump when anything stored changes meaning


@dataclass
class MouthAtlas:
    """The template's most open mouth: an RGB crop (h, w, 3) uint8 and, in crop pixels,
    the inner-lip contour (22, 2) = upper (11) then lower (11) points, left to right."""

    image: np.ndarray
    inner: np.ndarray
    opening: float  # / IOD, of that frame


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
    atlas: MouthAtlas | None = None
    timings: dict = field(default_factory=dict)

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
            "atlas_opening": self.atlas.opening if self.atlas is not None else None,
        }
        arrays = dict(
            meta=np.array(json.dumps(meta)),
            landmarks=self.landmarks.astype(np.float32),
            has_face=self.has_face, opening=self.opening.astype(np.float32),
            width=self.width.astype(np.float32), iod=self.iod.astype(np.float32),
            lip_colour=self.lip_colour.astype(np.float32),
        )
        if self.atlas is not None:
            arrays["atlas_image"] = self.atlas.image
            arrays["atlas_inner"] = self.atlas.inner.astype(np.float32)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp.npz")
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path, video_path=None) -> "PreparedTemplate":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            atlas = None
            if "atlas_image" in z:
                atlas = MouthAtlas(z["atlas_image"], z["atlas_inner"], meta["atlas_opening"])
            return cls(
                video_path=str(video_path or meta["video_path"]), info=MediaInfo(**meta["info"]),
                fps=meta["fps"], landmarks=z["landmarks"], has_face=z["has_face"],
                opening=z["opening"], width=z["width"], iod=z["iod"],
                median_width=meta["median_width"], lip_colour=z["lip_colour"], atlas=atlas)


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
        return PreparedTemplate.load(path, video_path=video_path)
    except Exception:  # missing, stale or corrupt cache: prepare again
        return None


def prepare_template(video_path, *, cache_dir=None, progress: Callable | None = None,
                     cancelled: Callable | None = None, use_cache: bool = True,
                     ) -> PreparedTemplate:
    """Prepare (or load from cache) a template video.  Raises NoFaceError, UndecodableMediaError,
    RenderCancelled.  progress(fraction, "preparing") is called as frames are tracked."""
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
    lms, has = [], []
    best = (-1.0, None)  # (opening, (crop, inner points))
    lip_samples = []
    with L.FaceTracker() as tracker:
        for i, rgb in enumerate(read_frames(video_path, fps=fps)):
            if i % 8 == 0:
                if cancelled is not None and cancelled():
                    raise RenderCancelled()
                if progress:
                    progress(min(0.99, i / total), "preparing")
            pts = tracker(rgb)
            has.append(pts is not None)
            lms.append(pts if pts is not None else np.zeros((L.N_POINTS, 2), np.float32))
            if pts is None:
                continue
            o, _, _ = L.mouth_measures(pts)
            if o > best[0]:
                best = (float(o), _atlas_crop(rgb, pts))
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
    atlas = None
    if best[1] is not None:
        crop, inner = best[1]
        atlas = MouthAtlas(crop, inner, best[0])
    tpl = PreparedTemplate(
        video_path=video_path, info=info, fps=float(fps), landmarks=lm.astype(np.float32),
        has_face=has, opening=opening, width=width, iod=iod,
        median_width=float(np.median(width[has])),
        lip_colour=np.median(np.stack(lip_samples), axis=0).astype(np.float32)
        if lip_samples else np.array([150, 80, 80], np.float32),
        atlas=atlas, timings={"prepare": time.perf_counter() - t0})
    if use_cache:
        try:
            cpath.parent.mkdir(parents=True, exist_ok=True)
            tpl.save(cpath, key=key)
        except OSError:
            pass  # read-only location: the cache is an optimisation only
    if progress:
        progress(1.0, "preparing")
    return tpl


def _atlas_crop(rgb: np.ndarray, pts: np.ndarray):
    """Crop around the mouth (outer lips + half a mouth width) and the inner contour in it."""
    outer = pts[L.LIPS_OUTER_UPPER + L.LIPS_OUTER_LOWER]
    x0, y0 = outer.min(axis=0)
    x1, y1 = outer.max(axis=0)
    m = 0.25 * (x1 - x0)
    h, w = rgb.shape[:2]
    x0, y0 = int(max(0, x0 - m)), int(max(0, y0 - m))
    x1, y1 = int(min(w, x1 + m + 1)), int(min(h, y1 + m + 1))
    inner = pts[L.LIPS_INNER_UPPER + L.LIPS_INNER_LOWER] - np.array([x0, y0], np.float32)
    return rgb[y0:y1, x0:x1].copy(), inner


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
