"""Audio-visual sync measures shared by the engine (each render's own sync estimate) and the
offline evaluation: speech-band energy per video frame, an aligned mouth crop, and the
correlation of mouth motion with energy change at the best lag."""

from __future__ import annotations

import numpy as np

from . import landmarks as L
from .constants import SAMPLE_RATE


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the positions where both are finite; nan when undefined."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def speech_energy(audio: np.ndarray, fps: float, n_frames: int,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Log energy in the speech band (300-3000 Hz) per video frame: (n_frames,) float32."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300, 3000], btype="band", fs=sample_rate, output="sos")
    x = sosfiltfilt(sos, audio.astype(np.float64)) if len(audio) > 30 else audio
    e = np.zeros(n_frames, np.float32)
    for j in range(n_frames):
        a = int(j / fps * sample_rate)
        b = int((j + 1) / fps * sample_rate)
        seg = x[a:b]
        e[j] = np.log(np.mean(seg ** 2) + 1e-8) if len(seg) else np.log(1e-8)
    return e


def aligned_mouth(rgb, pts, size):
    """Mouth crop (size, size, 3) in the face's frame: centred between the mouth corners,
    1.6 mouth widths wide, rotated upright."""
    import cv2

    u, v, iod = L.face_axes(pts)
    c = (pts[61] + pts[291]) / 2
    half = 0.8 * iod
    src = np.float32([c - u * half - v * half, c + u * half - v * half, c - u * half + v * half])
    dst = np.float32([[0, 0], [size, 0], [0, size]])
    M = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(rgb, M, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def sync_from_series(motion: np.ndarray, audio: np.ndarray, fps: float, *,
                     max_lag: int = 5) -> dict:
    """sync_score on a precomputed mouth-motion series (T,)."""
    T = len(motion)
    e = speech_energy(audio, fps, T)
    # energy change drives mouth change: compare |d energy| with mouth motion
    de = np.abs(np.diff(e, prepend=e[:1]))
    m = motion.astype(np.float64)

    def corr_at(sig, lag):
        if lag >= 0:
            a, b = m[lag:], sig[: T - lag]
        else:
            a, b = m[: T + lag], sig[-lag:]
        return pearson(a, b)

    rs = {lag: corr_at(de, lag) for lag in range(-max_lag, max_lag + 1)}
    rs = {k: v for k, v in rs.items() if np.isfinite(v)}
    if not rs:
        return {"r": float("nan"), "lag": 0, "z": float("nan")}
    lag = max(rs, key=rs.get)
    r = rs[lag]
    null = []
    for s in range(max(2 * max_lag + 1, T // 20), T - 2 * max_lag - 1, max(1, T // 60)):
        sh = np.roll(de, s)
        null.append(max((corr_at(sh, k) for k in range(-max_lag, max_lag + 1)),
                        key=lambda x: x if np.isfinite(x) else -9))
    null = np.array([x for x in null if np.isfinite(x)])
    z = float((r - null.mean()) / (null.std() + 1e-6)) if len(null) > 3 else float("nan")
    return {"r": float(r), "lag": int(lag), "z": z}
