"""The full lip shape: FaceMesh lip contours and jaw, normalised for pose and face size, and
a small linear basis (PCA) over it.

A *shape* is (P, 2) float: the SHAPE_POINTS of one frame in face units: origin under the nose
(mean of NOSE_BASE), x along the eye axis, y down, divided by the inter-ocular distance.
A shape's *coefficients* are (K,) float: its deviation from the speaker's own mean shape
projected on the basis.  Speaker identity lives in the mean; speech lives in the coefficients,
so a model trained on many people predicts coefficients and the renderer adds them to the
template speaker's mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L

OUTER = L.LIPS_OUTER_UPPER + L.LIPS_OUTER_LOWER[1:-1]          # 20 points
INNER = L.LIPS_INNER_UPPER + L.LIPS_INNER_LOWER[1:-1]          # 20 points
JAW = [172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397]   # 13 chin points
SHAPE_POINTS = OUTER + INNER + JAW                             # P = 53
NOSE_BASE = [1, 2, 98, 327]    # nose tip, base and wings: moves with the skull, not the jaw
N_COEFFS = 10

# positions inside SHAPE_POINTS, for measures on a shape
_POS = {p: k for k, p in enumerate(SHAPE_POINTS)}
INNER_UPPER_MID = [_POS[i] for i in (81, 13, 311)]
INNER_LOWER_MID = [_POS[i] for i in (178, 14, 402)]
CORNERS = (_POS[61], _POS[291])


def pose(lm: np.ndarray):
    """Face frame of landmarks lm (..., 478, 2): origin (..., 2) px, u (..., 2), v (..., 2),
    iod (...) px."""
    u, v, iod = L.face_axes(lm)
    origin = lm[..., NOSE_BASE, :].mean(axis=-2)
    return origin, u, v, iod


def to_face(lm: np.ndarray) -> np.ndarray:
    """Landmarks (..., 478, 2) px -> shapes (..., P, 2) in face units."""
    origin, u, v, iod = pose(lm)
    d = lm[..., SHAPE_POINTS, :] - origin[..., None, :]
    s = np.maximum(iod, 1e-6)[..., None]
    return np.stack([(d * u[..., None, :]).sum(-1) / s, (d * v[..., None, :]).sum(-1) / s], -1)


def to_image(shape: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Shape (P, 2) in face units -> (P, 2) px in the frame whose landmarks are lm (478, 2)."""
    origin, u, v, iod = pose(lm)
    return origin + iod * (shape[:, :1] * u + shape[:, 1:] * v)


def inner_polygon(shape: np.ndarray) -> np.ndarray:
    """The inner-lip contour of a shape (P, 2) as a closed polygon (20, 2): upper lip left to
    right, then lower lip right to left."""
    inner = shape[len(OUTER):len(OUTER) + len(INNER)]
    return np.concatenate([inner[:11], inner[11:][::-1]])


def opening(shape: np.ndarray) -> np.ndarray:
    """Inner-lip gap (...) in face units (IOD) of shapes (..., P, 2), as
    lipsync.landmarks.mouth_measures measures it on landmarks."""
    gap = shape[..., INNER_LOWER_MID, 1] - shape[..., INNER_UPPER_MID, 1]
    return np.maximum(gap.mean(-1), 0.0)


def width(shape: np.ndarray) -> np.ndarray:
    """Mouth corner distance (...) in face units."""
    a, b = CORNERS
    return np.abs(shape[..., b, 0] - shape[..., a, 0])


@dataclass
class ShapeBasis:
    """components (K, P*2): orthonormal rows; scale (K,): each coefficient's spread over the
    training speech (for normalised distances)."""

    components: np.ndarray
    scale: np.ndarray

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def encode(self, shapes: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Shapes (T, P, 2) and the speaker's mean (P, 2) -> coefficients (T, K)."""
        d = (shapes - mean).reshape(len(shapes), -1)
        return d @ self.components.T

    def decode(self, coeffs: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Coefficients (T, K) and a mean (P, 2) -> shapes (T, P, 2)."""
        d = np.asarray(coeffs) @ self.components
        return mean[None] + d.reshape(len(d), -1, 2)

    @classmethod
    def fit(cls, deviations: np.ndarray, k: int = N_COEFFS) -> ShapeBasis:
        """PCA of deviations (N, P, 2) from each speaker's mean."""
        x = deviations.reshape(len(deviations), -1)
        _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
        comps = vt[:k]
        return cls(comps.astype(np.float32), (s[:k] / np.sqrt(len(x))).astype(np.float32))


def robust_mean(shapes: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """A speaker's reference shape (P, 2): the per-point median over valid frames."""
    s = shapes if valid is None else shapes[valid]
    return np.median(s, axis=0)
