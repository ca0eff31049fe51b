"""The template's own mouths, indexed by shape: real lips, teeth and tongue to paste into
other frames (the approach of Video Rewrite, 1997, and Synthesizing Obama, 2017).

At preparation every face frame (up to MAX_ENTRIES, evenly spread) contributes a *patch*: the
mouth cut out in face units (lipsync.shape), upright and at a fixed scale, with its shape
coefficients and two appearance measures.  At render time ``select`` picks, for each output
frame, the entry whose shape best matches the target, with a temporal cost (dynamic
programming over each frame's top-K candidates), so consecutive output frames play
consecutive template mouths wherever they can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import shape as S

# the patch, in face units (x along the eyes, y down from under the nose)
PATCH_X = (-0.85, 0.85)
PATCH_Y = (-0.05, 1.05)
PATCH_PPU = 96            # patch pixels per IOD (a 163 x 106 px patch)
MAX_ENTRIES = 900         # at most this many frames are indexed (36 s at 25 fps)
TOP_K = 24                # candidates per output frame
JUMP_COST = 0.2           # cost of not continuing with the next template frame (chosen on training clips)
STAY_COST = 0.1           # cost of holding the same template frame
CLOSE_ENOUGH = 1.2        # mean normalised distance above which no candidate fits


def patch_size() -> tuple[int, int]:
    """(width, height) of a patch in pixels."""
    return (int(round((PATCH_X[1] - PATCH_X[0]) * PATCH_PPU)),
            int(round((PATCH_Y[1] - PATCH_Y[0]) * PATCH_PPU)))


def face_to_patch(points: np.ndarray) -> np.ndarray:
    """Face-unit points (..., 2) -> patch pixel coordinates."""
    return (points - np.array([PATCH_X[0], PATCH_Y[0]])) * PATCH_PPU


def patch_affine(lm: np.ndarray) -> np.ndarray:
    """(2, 3) affine map from patch pixels to image pixels of the frame with landmarks lm."""
    origin, u, v, iod = S.pose(lm)
    s = iod / PATCH_PPU
    o = origin + iod * (PATCH_X[0] * u + PATCH_Y[0] * v)
    return np.array([[u[0] * s, v[0] * s, o[0]], [u[1] * s, v[1] * s, o[1]]], np.float64)


def cut_patch(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The mouth patch (h, w, 3) uint8 of one frame."""
    import cv2

    w, h = patch_size()
    return cv2.warpAffine(rgb, patch_affine(lm), (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def appearance(patch: np.ndarray, shape: np.ndarray) -> tuple[float, float]:
    """(inner-mouth area in IOD^2, share of the inner mouth that is bright like teeth)."""
    import cv2

    inner = face_to_patch(S.inner_polygon(shape))
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 1)
    area = float(mask.sum()) / PATCH_PPU ** 2
    if mask.sum() < 6:
        return area, 0.0
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV)
    m = mask.astype(bool)
    skin = np.median(grey[~m])
    teeth = (grey[m] > skin * 0.95) & (hsv[..., 1][m] < 90)
    return area, float(teeth.mean())


@dataclass
class MouthIndex:
    """frames (N,) template frame numbers; coeffs (N, K); patches (N, h, w, 3) uint8;
    shapes (N, P, 2) face units; area (N,), teeth (N,)."""

    frames: np.ndarray
    coeffs: np.ndarray
    patches: np.ndarray
    shapes: np.ndarray
    area: np.ndarray
    teeth: np.ndarray

    def __len__(self) -> int:
        return int(len(self.frames))

    def select(self, targets: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For target coefficients (n, K), the index entry per output frame (n,) int (-1:
        none close enough) and its distance (n,).  Deterministic: ties go to the lower entry."""
        n = len(targets)
        if len(self) == 0 or n == 0:
            return np.full(n, -1), np.full(n, np.inf)
        w = 1.0 / np.maximum(scale, 1e-6)
        d = (((targets[:, None, :] - self.coeffs[None]) * w) ** 2).mean(-1) ** 0.5   # (n, N)
        k = min(TOP_K, len(self))
        cand = np.argsort(d, axis=1, kind="stable")[:, :k]                           # (n, k)
        unary = np.take_along_axis(d, cand, axis=1)
        cost = unary[0].copy()
        back = np.zeros((n, k), int)
        for j in range(1, n):
            prev, cur = self.frames[cand[j - 1]], self.frames[cand[j]]
            step = cur[None, :] - prev[:, None]                          # (k_prev, k)
            trans = np.where(step == 1, 0.0, np.where(step == 0, STAY_COST, JUMP_COST))
            total = cost[:, None] + trans
            back[j] = np.argmin(total, axis=0)
            cost = total[back[j], np.arange(k)] + unary[j]
        path = np.zeros(n, int)
        path[-1] = int(np.argmin(cost))
        for j in range(n - 1, 0, -1):
            path[j - 1] = back[j, path[j]]
        chosen = cand[np.arange(n), path]
        dist = d[np.arange(n), chosen]
        return np.where(dist <= CLOSE_ENOUGH, chosen, -1), dist

    def fitness(self) -> dict:
        """Does the template show enough mouth variety to render well?  Returns
        {"ok": bool, "open_share", "teeth_share", "notes": [codes]} with codes
        "never_open", "rarely_open", "no_teeth"."""
        if len(self) == 0:
            return {"ok": False, "open_share": 0.0, "teeth_share": 0.0, "notes": ["never_open"]}
        opening = S.opening(self.shapes)
        open_share = float((opening > 0.08).mean())
        teeth_share = float(((self.teeth > 0.15) & (opening > 0.05)).mean())
        notes = []
        if float(opening.max()) < 0.08:
            notes.append("never_open")
        elif open_share < 0.05:
            notes.append("rarely_open")
        if teeth_share < 0.02:
            notes.append("no_teeth")
        return {"ok": not notes, "open_share": open_share, "teeth_share": teeth_share,
                "notes": notes}


FITNESS_TEXT = {
    "never_open": "The presenter's mouth never opens in this video, so open vowels will look "
                  "drawn rather than real. Record the presenter speaking, not silent or smiling.",
    "rarely_open": "The presenter's mouth is open in very few frames. A clip where the presenter "
                   "talks naturally for 10 seconds or more renders better.",
    "no_teeth": "The teeth are never visible, so open mouths will show no teeth. Record the "
                "presenter speaking clearly, facing the camera, in good light.",
}


def build_index(entries: list[tuple[int, np.ndarray, np.ndarray]], coeffs: np.ndarray,
                shapes: np.ndarray) -> MouthIndex:
    """entries: [(frame number, patch, shape)] collected during preparation; coeffs (N, K)."""
    if not entries:
        w, h = patch_size()
        return MouthIndex(np.zeros(0, int), np.zeros((0, coeffs.shape[1] if coeffs.ndim == 2 else 0), np.float32),
                          np.zeros((0, h, w, 3), np.uint8), np.zeros((0, len(S.SHAPE_POINTS), 2), np.float32),
                          np.zeros(0, np.float32), np.zeros(0, np.float32))
    frames = np.array([e[0] for e in entries])
    patches = np.stack([e[1] for e in entries])
    ap = [appearance(p, s) for p, s in zip(patches, shapes)]
    return MouthIndex(frames, coeffs.astype(np.float32), patches, shapes.astype(np.float32),
                      np.array([a for a, _ in ap], np.float32), np.array([t for _, t in ap], np.float32))
