"""The default engine: Whisper speech features -> lip shapes (lipsync.mouth_model, adapted to
the template's speaker when it speaks) -> the template's own mouths pasted and warped to
those shapes (lipsync.render.ShapeRenderer)."""

from __future__ import annotations

import logging

import numpy as np

from .. import align
from ..render import ShapeRenderer
from .base import Engine

log = logging.getLogger(__name__)


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
        self._model = None

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
        targets = model.basis.decode(coeffs, template.shape_mean.astype(np.float64))
        entries = np.full(n_frames, -1)
        if self.texture and template.mouth_index is not None:
            on = align.template_indices(n_frames, fps, template.n_frames, template.fps)
            entries, _ = template.mouth_index.select(coeffs, model.basis.scale, on)
        renderer = ShapeRenderer(template)
        self.last_entries = entries

        def per_frame(frame, i, j):
            return renderer(frame, template.landmarks[i], targets[j], int(entries[j]))

        return per_frame
