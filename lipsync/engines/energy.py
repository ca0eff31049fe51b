"""The energy engine, chosen explicitly (``--engine energy``) for tests and comparisons: the
mouth opens with speech-band loudness, nothing else.  Same renderer as the default engine."""

from __future__ import annotations

import numpy as np

from .. import shape as S
from .base import energy_track
from .default import DefaultEngine


class EnergyEngine(DefaultEngine):
    name = "energy"

    def shape_track(self, template, audio, fps, n_frames):
        """Coefficients that open the speaker's mean shape to the loudness track's opening,
        with the least change of shape (the minimum-norm solution on the basis)."""
        model = self.model()
        opening, _ = energy_track(audio, fps, n_frames)
        return opening_coefficients(model.basis, template.shape_mean, opening)


def opening_coefficients(basis, mean: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """(n,) target inner-lip openings (IOD) -> (n, K) coefficients."""
    g = np.zeros(mean.shape, np.float64)           # opening = g . shape (while open)
    g[S.INNER_LOWER_MID, 1] += 1.0 / len(S.INNER_LOWER_MID)
    g[S.INNER_UPPER_MID, 1] -= 1.0 / len(S.INNER_UPPER_MID)
    direction = basis.components.astype(np.float64) @ g.reshape(-1)   # (K,)
    base = float((g * mean).sum())
    step = (np.asarray(opening, np.float64) - base) / max(float(direction @ direction), 1e-9)
    return step[:, None] * direction[None, :]
