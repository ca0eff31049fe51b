"""Length alignment: which template frame each output frame shows, and mouth-track resampling.

Audio longer than the template extends it by ping-pong looping (0, 1, ..., N-1, N-2, ..., 0,
1, ...): playing backwards avoids the jump cut of a plain loop.  Shorter audio cuts it.
"""

from __future__ import annotations

import numpy as np


def n_output_frames(duration: float, fps: float) -> int:
    """Frames covering `duration` seconds at `fps` (at least 1)."""
    return max(1, int(round(duration * fps)))


def ping_pong(positions: np.ndarray, n: int) -> np.ndarray:
    """Fold integer positions (>= 0) onto 0..n-1 back and forth: (K,) int -> (K,) int."""
    positions = np.asarray(positions, np.int64)
    if n <= 1:
        return np.zeros_like(positions)
    period = 2 * (n - 1)
    q = positions % period
    return np.where(q < n, q, period - q)


def template_indices(n_out: int, out_fps: float, n_template: int, template_fps: float
                     ) -> np.ndarray:
    """Template frame index shown at each output frame: (n_out,) int64.

    Output frame j is at time j / out_fps; the template frame at that time (nearest) is used,
    ping-ponged when the time runs past the template's end.
    """
    t = np.arange(n_out) / float(out_fps)
    pos = np.floor(t * float(template_fps) + 0.5).astype(np.int64)
    return ping_pong(pos, n_template)


def is_monotonic(indices: np.ndarray) -> bool:
    """True when indices never go backwards (the template can be streamed, no spooling)."""
    return bool(np.all(np.diff(indices) >= 0))


def frames_shown_again(indices: np.ndarray, n_template: int) -> np.ndarray:
    """Which template frames are shown again after other frames: (n_template,) bool.

    Only these must be kept once decoded (FrameSpool); a frame repeated back to back, or shown
    once, streams.  Audio a little longer than the template keeps just the frames of the bounce
    (about twice the overshoot), not the whole template.
    """
    indices = np.asarray(indices, np.int64)
    n = max(int(n_template), 0)
    if len(indices) == 0 or n == 0:
        return np.zeros(n, bool)
    runs = indices[np.r_[True, np.diff(indices) != 0]]  # one entry per run of equal indices
    return np.bincount(np.clip(runs, 0, n - 1), minlength=n) > 1


def resample(values: np.ndarray, src_fps: float, dst_fps: float, n: int) -> np.ndarray:
    """Linearly resample a per-frame series (T,) at src_fps to n frames at dst_fps."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return np.zeros(n, np.float32)
    if len(values) == n and abs(src_fps - dst_fps) < 1e-6:
        return values.astype(np.float32)
    t_dst = np.arange(n) / dst_fps
    t_src = np.arange(len(values)) / src_fps
    return np.interp(t_dst, t_src, values).astype(np.float32)


def smooth_series(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing of a (T,) series; sigma in frames (0 = none)."""
    if sigma <= 0 or len(x) < 3:
        return np.asarray(x, np.float32)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(x, np.float64), sigma, mode="nearest").astype(np.float32)
