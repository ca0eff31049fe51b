"""The default engine: Whisper speech features -> lip shapes (lipsync.mouth_model, adapted to
the template's speaker when it speaks) -> the template's own mouths pasted and warped to
those shapes (lipsync.render.ShapeRenderer)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from .. import align
from .. import shape as S
from ..render import ShapeRenderer
from ..shape import to_face as target_shape
from .base import Engine

if TYPE_CHECKING:
    from ..mouth_model import MouthModel

log = logging.getLogger(__name__)


N_LIPS = len(S.OUTER) + len(S.INNER)
# targets are kept within the presenter's own range of each coefficient plus this share of it
RANGE_PAD = 0.1
_UNPLANNED = object()  # per_frame called without a plan made ahead (a plain frame renderer call)


def speech_only(delta: np.ndarray) -> np.ndarray:
    """The part of a shape change (P, 2) in face units that speech makes: the jaw moves up and
    down only, and the lips do not slide sideways as a whole (the basis, fitted on people who
    also turn their heads a little, carries some head pose that the frame already has)."""
    d = delta.copy()
    d[N_LIPS:, 0] = 0.0
    d[:N_LIPS, 0] -= d[:N_LIPS, 0].mean()
    return d


class DefaultEngine(Engine):
    name = "default"

    def __init__(self, device: str = "cpu", *, mouth_weights=None, adapt: bool = True,
                 texture: bool = True, smooth_sigma: float = 0.7, **options):
        """mouth_weights: path of a mouth model (default: the committed one).
        adapt: use the template's speaker-adapted read-out when preparation made one.
        texture: paste the template's own mouths (False: warp only, for comparisons)."""
        super().__init__(device, **options)
        self.mouth_weights = mouth_weights
        self.adapt = adapt
        self.texture = texture
        self.smooth_sigma = smooth_sigma
        self._model: MouthModel | None = None

    def model(self):
        """The mouth model, loaded once; MissingComponentError names what is missing."""
        if self._model is None:
            from ..mouth_model import MouthModel

            self._model = MouthModel.load(self.mouth_weights)
        return self._model

    def shape_track(self, template, audio, fps: float, n_frames: int) -> np.ndarray:
        """Target lip-shape coefficients (n_frames, K) for the audio."""
        from ..mouth_model import model_id

        model = self.model()
        feats = audio.whisper
        if feats is None:
            from ..speech import whisper_features

            feats = whisper_features(audio.samples, device=self.device)
        weights = None
        if (self.adapt and template.speaker_weights is not None
                and template.model_id == model_id(self.mouth_weights)):
            weights = template.speaker_weights
        coeffs = model.predict(feats, fps, n_frames, weights=weights)
        return np.stack([align.smooth_series(c, self.smooth_sigma) for c in coeffs.T], 1)

    def frame_renderer(self, template, audio, fps, n_frames):
        model = self.model()
        coeffs = self.shape_track(template, audio, fps, n_frames)
        return self._renderer_for(template, model, coeffs, fps, n_frames)

    def _renderer_for(self, template, model, coeffs, fps, n_frames):
        mean = template.shape_mean.astype(np.float64)
        components = model.basis.components.astype(np.float64)
        index = template.mouth_index
        if index is not None and len(index) >= 10:
            # keep every coefficient within what this presenter's own mouth did (plus a
            # tenth of its range): beyond it the warp has no real mouth to show and folds skin
            lo, hi = index.coeffs.min(0), index.coeffs.max(0)
            pad = RANGE_PAD * (hi - lo)
            coeffs = np.clip(coeffs, lo - pad, hi + pad)
        entries = np.full(n_frames, -1)
        if self.texture and template.mouth_index is not None:
            entries, _ = template.mouth_index.select(coeffs, model.basis.scale)
        renderer = ShapeRenderer(template)
        frame_shape = (template.height_px, template.width_px)

        class PerFrame:
            @staticmethod
            def plan(i: int, j: int):
                # The target is the frame's own shape with its speech coefficients replaced:
                # what the basis does not describe (a turned or tilted head, this frame's
                # asymmetry) stays as it is, so a turned head is not pulled towards the
                # frontal mean shape.
                lm = template.landmarks[i]
                own = target_shape(lm)
                delta = ((coeffs[j] - model.basis.encode(own[None], mean)[0]) @ components).reshape(-1, 2)
                return renderer.plan(lm, own + speech_only(delta), int(entries[j]), frame_shape)

            def __call__(self, frame, i: int, j: int, plan=_UNPLANNED):
                # a plan of None (face too small to touch) is an answer, not a missing plan
                return renderer.apply(frame, self.plan(i, j) if plan is _UNPLANNED else plan)

        return PerFrame()
