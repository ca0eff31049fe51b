"""Audio -> lip shape: a linear read-out of Whisper encoder features with temporal context.

Input: Whisper base encoder features (T50, 512) at 50 Hz (lipsync.speech).  Output: lip
shape coefficients (n_frames, K) on lipsync.shape's basis, one row per video frame (frame i
shows time i / fps).

The read-out is linear on purpose: it is fitted in closed form on real speakers (ridge
regression), and the same form adapts to one speaker in closed form too (``adapt``: ridge
pulled towards the generic weights, so a template with little speech stays near the generic
model and one with a lot of speech becomes its own, averaged with a recalibration of the
generic predictions for the speaker).  Weights are plain numpy (npz).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .shape import ShapeBasis
from .speech import FEATURE_RATE

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "mouth.npz"
# context taps around a video frame's time, in 50 Hz feature rows (±200 ms); each tap
# averages two rows (40 ms, one frame at 25 fps)
TAPS = (-10, -6, -4, -2, 0, 2, 4, 6, 10)
# Less speech than this in a template: no speaker adaptation.  On the training clips, generic
# models that had not seen a clip, adapted on its first 2, 2.5, 3 or 4 s, predicted its second
# half better than unadapted at every length (opening r +0.02 to +0.04), so even a short
# template adapts; the prior (adapt_strength) keeps it near the generic read-out.
ADAPT_MIN_SECONDS = 1.5


def model_id(path=None) -> str:
    """A short id of the weights file (the preparation cache is tied to it)."""
    path = Path(path or DEFAULT_WEIGHTS)
    st = path.stat() if path.is_file() else None
    return _model_id(str(path), st.st_size if st else -1, st.st_mtime_ns if st else -1)


@lru_cache(maxsize=8)
def _model_id(path: str, size: int, mtime: int) -> str:
    import hashlib

    if size < 0:
        return "missing"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass
class MouthModel:
    """feat_mean (512,), feat_proj (512, D): per-dimension normalisation and projection of
    Whisper features; weights (len(TAPS) * D + 1, K): the read-out (last row: bias);
    basis: the shape basis the coefficients live on; ridge: the penalty the generic weights
    were fitted with (per training row), reused as the prior's strength when adapting."""

    feat_mean: np.ndarray
    feat_scale: np.ndarray
    feat_proj: np.ndarray
    weights: np.ndarray
    basis: ShapeBasis
    ridge: float
    adapt_strength: float
    info: dict
    output_strength: float = 0.0  # 0: adapt by the ridge alone (models fitted before it)

    # -- features ---------------------------------------------------------------------
    def design(self, whisper: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
        """(T50, 512) features -> (n_frames, len(TAPS) * D + 1) design matrix."""
        z = ((whisper - self.feat_mean) / self.feat_scale) @ self.feat_proj      # (T50, D)
        z = np.concatenate([z, z[-1:]])                                           # for r + 1
        t = np.arange(n_frames) / fps * FEATURE_RATE
        cols = []
        last = len(z) - 2
        for tap in TAPS:
            r = np.clip(np.round(t).astype(int) + tap, 0, last)
            cols.append(0.5 * (z[r] + z[r + 1]))
        cols.append(np.ones((n_frames, 1), z.dtype))
        return np.concatenate(cols, axis=1).astype(np.float32)

    def predict(self, whisper: np.ndarray, fps: float, n_frames: int,
                weights: np.ndarray | None = None) -> np.ndarray:
        """Coefficients (n_frames, K) for the audio's features."""
        w = self.weights if weights is None else weights
        return self.design(whisper, fps, n_frames) @ w

    # -- speaker adaptation -----------------------------------------------------------
    def adapt(self, whisper: np.ndarray, fps: float, coeffs: np.ndarray,
              valid: np.ndarray) -> np.ndarray:
        """Weights for one speaker from paired audio features and tracked coefficients
        (T, K) (valid (T,) bool: frames with a face and speech).  The mean of two fits:

        - ridge towards the generic weights W0 in feature space: argmin |Y - X W|^2 +
          a |W - W0|^2, a = adapt_strength;
        - the generic read-out's own predictions P = X W0 recalibrated for this speaker, a
          (K + 1, K) map M pulled towards the identity: argmin |Y - [P 1] M|^2 +
          b n |M - I|^2, b = output_strength, n valid frames.  It has K (K + 1) unknowns
          against the ridge's ~1000 per coefficient, so a few seconds of speech pin it down.

        Both are linear in X, so their mean is one weight matrix.  On the training clips (a
        generic model without the clip, adapted on its first half, scored on its second) the
        mean predicted opening at r 0.62 against the ridge's 0.57 (lipsync.train)."""
        X = self.design(whisper, fps, len(coeffs))[valid].astype(np.float64)
        Y = coeffs[valid].astype(np.float64)
        W0 = self.weights.astype(np.float64)
        lam = float(self.adapt_strength)
        A = X.T @ X + lam * np.eye(X.shape[1])
        W = np.linalg.solve(A, X.T @ Y + lam * W0)
        if self.output_strength > 0:
            K = W0.shape[1]
            P = np.concatenate([X @ W0, np.ones((len(X), 1))], axis=1)
            prior = np.vstack([np.eye(K), np.zeros((1, K))])
            b = self.output_strength * len(X)
            M = np.linalg.solve(P.T @ P + b * np.eye(K + 1), P.T @ Y + b * prior)
            Wm = W0 @ M[:K]
            Wm[-1] += M[K]  # the design's last column is the bias
            W = 0.5 * (W + Wm)
        return W.astype(np.float32)

    # -- persistence ------------------------------------------------------------------
    def save(self, path) -> None:
        import json

        np.savez_compressed(
            path, feat_mean=self.feat_mean, feat_scale=self.feat_scale,
            feat_proj=self.feat_proj, weights=self.weights,
            components=self.basis.components, scale=self.basis.scale,
            ridge=np.float64(self.ridge), adapt_strength=np.float64(self.adapt_strength),
            output_strength=np.float64(self.output_strength),
            info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path=None) -> MouthModel:
        import json

        from .errors import MissingComponentError

        path = Path(path or DEFAULT_WEIGHTS)
        if not path.is_file():
            raise MissingComponentError(
                f"The mouth model {path} is missing: rebuild it with `python -m lipsync.train`.")
        from .speech import ENCODER_BLOCKS

        with np.load(path, allow_pickle=False) as z:
            model = cls(z["feat_mean"], z["feat_scale"], z["feat_proj"], z["weights"],
                        ShapeBasis(z["components"], z["scale"]), float(z["ridge"]),
                        float(z["adapt_strength"]), json.loads(str(z["info"])),
                        float(z["output_strength"]) if "output_strength" in z.files else 0.0)
        # a read-out fitted on other features would turn any speech into wrong mouths
        blocks = model.info.get("whisper_blocks", 6)   # models before the cut read all six
        if blocks != ENCODER_BLOCKS:
            raise MissingComponentError(
                f"The mouth model {path} was fitted on Whisper features after {blocks} encoder "
                f"blocks, and this engine computes them after {ENCODER_BLOCKS}: rebuild it with "
                "`python -m lipsync.train`.")
        return model
