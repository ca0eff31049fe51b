"""Offline: the real talking clips used to train and validate the mouth model (never imported
by runtime code).

Each clip is measured once and cached under var/train_cache/: FaceMesh landmarks of every
frame (the same tracker and smoothing as template preparation) and the Whisper features of its
own audio.  ../shared/media holds the Apache-2.0 test clips, ../shared/media/train fourteen
more people (development and measurement only: see its SOURCES.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
CACHE = REPO / "var" / "train_cache"

TEST_CLIPS = ["face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4",
              "portrait_hevc_1080x1920.mp4"]
TRAIN_CLIPS = sorted(p.name for p in (MEDIA / "train").glob("*.mp4")) if (MEDIA / "train").is_dir() else []

# Kept out of training for validation: the three square test clips (the engine tests' floor
# test uses one of them), and three of the fourteen training people, chosen for variety
# (a news anchor, a VoxCeleb interview crop, an HDTF studio woman) before any fitting.
HOLDOUT = ["face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4",
           "train/dfrf_cnn2_25fps.mp4", "train/pcavs_Audio_Source_741400104.mp4",
           "train/sadtalker_RD_Radio34_000.mp4"]


def all_clips() -> list[str]:
    return TEST_CLIPS + [f"train/{n}" for n in TRAIN_CLIPS]


def training_clips() -> list[str]:
    return [c for c in all_clips() if c not in HOLDOUT]


@dataclass
class Clip:
    name: str
    fps: float
    landmarks: np.ndarray   # (T, 478, 2) float32 px, smoothed like a prepared template
    has_face: np.ndarray    # (T,) bool
    whisper: np.ndarray     # (T50, 512) float32 at 50 Hz
    samples: np.ndarray     # (N,) float32 16 kHz


def load_clip(name: str) -> Clip:
    """Measure a clip (cached by name and size)."""
    path = MEDIA / name
    key = hashlib.sha1(f"{name}:{path.stat().st_size}:c2".encode()).hexdigest()[:12]
    cache = CACHE / f"clip-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return Clip(name, float(z["fps"]), z["landmarks"], z["has_face"], z["whisper"],
                    z["samples"])
    from . import landmarks as L
    from .media import decode_audio, read_frames
    from .probing import probe
    from .speech import whisper_features

    fps = probe(path).fps
    lm, has = L.track(read_frames(path, fps=fps))
    lm = L.smooth(lm, has, sigma=1.0)
    samples = decode_audio(path)
    feats = whisper_features(samples)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, fps=fps, landmarks=lm.astype(np.float32), has_face=has, whisper=feats,
             samples=samples)
    return Clip(name, fps, lm.astype(np.float32), has, feats, samples)


if __name__ == "__main__":
    import time

    for c in all_clips():
        t = time.perf_counter()
        clip = load_clip(c)
        print(f"{c}: {len(clip.has_face)} frames, face {clip.has_face.mean():.2f}, "
              f"{time.perf_counter() - t:.1f} s", flush=True)
