"""Face landmarks: MediaPipe FaceMesh (478 points) in tracking mode, plus mouth geometry.

Landmarks are ``(478, 2) float32`` pixel coordinates (x, y) in the full display-oriented
frame; a series is ``(T, 478, 2)`` with a ``(T,) bool`` has_face mask (rows without a face
are zeros).  Mouth measures are normalised by the inter-ocular distance (IOD, between the
eye-corner midpoints) so they do not depend on the face's size in the frame.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

N_POINTS = 478
DETECT_LONG_SIDE = 640  # FaceMesh runs on a frame downscaled to this long side

# MediaPipe FaceMesh topology (canonical indices).  Lip contours run from the left mouth
# corner (image left) to the right one.
LIPS_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIPS_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# Jaw line from the left cheek down round the chin to the right cheek.
JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397,
       288, 361, 323, 454]
CHIN = 152
NOSE = [1, 2, 98, 327, 4, 5, 195, 48, 278, 64, 294, 168, 6]
EYE_LEFT = (33, 133)   # outer, inner corner of the eye on the image left
EYE_RIGHT = (362, 263)
CHEEKS = [205, 425, 50, 280, 187, 411, 147, 376, 123, 352]


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints of the two eyes' corners; lm (..., 478, 2) -> two (..., 2) arrays."""
    left = lm[..., list(EYE_LEFT), :].mean(axis=-2)
    right = lm[..., list(EYE_RIGHT), :].mean(axis=-2)
    return left, right


def face_axes(lm: np.ndarray):
    """Face frame: (u, v, iod) with u the unit eye axis (image left to right), v the unit
    downward axis perpendicular to it, iod the inter-ocular distance in pixels.
    lm (..., 478, 2) -> u (..., 2), v (..., 2), iod (...)."""
    left, right = eye_centres(lm)
    d = right - left
    iod = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(iod[..., None], 1e-6)
    v = np.stack([-u[..., 1], u[..., 0]], axis=-1)
    return u, v, iod


def mouth_measures(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner-lip opening and mouth width, both / IOD, and the IOD in pixels.

    lm (..., 478, 2) -> opening (...), width (...), iod (...).  The opening is the mean gap
    of the three central inner-lip pairs along the face's vertical axis (0 when closed).
    """
    u, v, iod = face_axes(lm)
    up = lm[..., [81, 13, 311], :]
    lo = lm[..., [178, 14, 402], :]
    gap = ((lo - up) * v[..., None, :]).sum(-1).mean(-1)
    corners = lm[..., 291, :] - lm[..., 61, :]
    width = np.abs((corners * u).sum(-1))
    s = np.maximum(iod, 1e-6)
    return np.maximum(gap, 0.0) / s, width / s, iod


def lower_face_polygon(lm: np.ndarray, margin: float = 0.12) -> np.ndarray:
    """Polygon (K, 2) enclosing the lower face: the jaw line closed over the nose tip,
    pushed out by `margin` x IOD.  This is the only region the renderer may change."""
    _, v, iod = face_axes(lm)
    jaw = lm[JAW]
    top = lm[[1]] - v * 0.08 * iod  # just above the nose tip
    poly = np.concatenate([jaw, top], axis=0)
    c = poly.mean(axis=0)
    d = poly - c
    n = np.linalg.norm(d, axis=1, keepdims=True)
    return (poly + d / np.maximum(n, 1e-6) * margin * iod).astype(np.float32)


def lower_face_mask(lm: np.ndarray, shape: tuple[int, int], margin: float = 0.12) -> np.ndarray:
    """(H, W) bool mask of the lower-face region (see lower_face_polygon)."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    poly = lower_face_polygon(lm, margin)
    cv2.fillPoly(mask, [np.round(cv2.convexHull(poly)).astype(np.int32)], 1)
    return mask.astype(bool)


class FaceTracker:
    """MediaPipe FaceMesh in tracking mode, one face per frame.

    Call with consecutive RGB frames (H, W, 3) uint8; returns (478, 2) float32 pixel
    landmarks or None.  With several faces, keeps the one nearest the previous choice, or
    else the largest and most central.
    """

    def __init__(self, *, long_side: int = DETECT_LONG_SIDE, max_faces: int = 2,
                 min_confidence: float = 0.5):
        import mediapipe as mp

        self.long_side = long_side
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
        self._prev_centre = None

    def close(self):
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        import cv2

        h, w = rgb.shape[:2]
        scale = min(1.0, self.long_side / max(h, w))
        small = rgb
        if scale < 1.0:
            small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        res = self._mesh.process(np.ascontiguousarray(small))
        if not res.multi_face_landmarks:
            self._prev_centre = None
            return None
        faces = []
        for f in res.multi_face_landmarks:
            # normalised coordinates of the small frame == of the full frame
            pts = np.array([(p.x * w, p.y * h) for p in f.landmark], np.float32)
            faces.append(pts[:N_POINTS])
        best = self._choose(faces, w, h)
        self._prev_centre = best.mean(axis=0)
        return best

    def _choose(self, faces, w, h):
        if len(faces) == 1:
            return faces[0]
        if self._prev_centre is not None:
            d = [np.linalg.norm(f.mean(axis=0) - self._prev_centre) for f in faces]
            return faces[int(np.argmin(d))]
        centre = np.array([w / 2, h / 2])
        diag = np.hypot(w, h)

        def score(f):
            size = np.ptp(f[:, 0]) * np.ptp(f[:, 1])
            off = np.linalg.norm(f.mean(axis=0) - centre) / diag
            return size * (1.0 - off)

        return max(faces, key=score)


def track(frames: Iterable[np.ndarray], *, progress=None, total: int | None = None,
          cancelled=None) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks for every frame of an iterable of RGB frames.

    Returns (T, 478, 2) float32 raw landmarks and (T,) bool has_face.  progress(fraction)
    is called every 8 frames when total is known; cancelled() is polled as often.
    """
    from .errors import RenderCancelled

    out, has = [], []
    with FaceTracker() as tracker:
        for i, rgb in enumerate(frames):
            if i % 8 == 0:
                if cancelled is not None and cancelled():
                    raise RenderCancelled()
                if progress is not None and total:
                    progress(min(1.0, i / total))
            pts = tracker(rgb)
            has.append(pts is not None)
            out.append(pts if pts is not None else np.zeros((N_POINTS, 2), np.float32))
    if not out:
        return np.zeros((0, N_POINTS, 2), np.float32), np.zeros(0, bool)
    return np.stack(out), np.array(has)


def smooth(lm: np.ndarray, has_face: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Zero-phase Gaussian smoothing over time, separately within each run of face frames.

    lm (T, 478, 2), has_face (T,), sigma in frames.  Face-less rows stay zero.  Smoothing
    removes FaceMesh's frame-to-frame jitter, which a warp driven by the landmarks would
    otherwise turn into visible wobble.
    """
    from scipy.ndimage import gaussian_filter1d

    out = lm.copy()
    if sigma <= 0:
        return out
    t = 0
    T = len(has_face)
    while t < T:
        if not has_face[t]:
            t += 1
            continue
        e = t
        while e < T and has_face[e]:
            e += 1
        if e - t > 1:
            out[t:e] = gaussian_filter1d(lm[t:e], sigma, axis=0, mode="nearest")
        t = e
    return out
