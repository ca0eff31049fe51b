"""The default CPU engine: lipsync.motion's audio->mouth model + landmark-warp renderer."""

from __future__ import annotations

import logging

import numpy as np

from .. import align
from ..render import MouthRenderer
from .base import Engine, energy_track

log = logging.getLogger(__name__)


class DefaultEngine(Engine):
    name = "default"

    def __init__(self, device: str = "cpu", *, motion_weights=None, track=None,
                 smooth_sigma: float = 0.6, **options):
        """motion_weights: path of a motion model (default: the committed one).
        track: optional callable (audio, fps, n) -> (opening, width) replacing the model."""
        super().__init__(device, **options)
        self.motion_weights = motion_weights
        self.track_fn = track
        self.smooth_sigma = smooth_sigma
        self._model = None
        self._model_error = None

    def _load_model(self):
        # remember a failure too: no weights means the energy fallback for every render
        if self._model_error is not None:
            raise self._model_error
        if self._model is None:
            from ..motion import load_motion_model

            try:
                self._model = load_motion_model(self.motion_weights, device=self.device)
            except (ImportError, FileNotFoundError, OSError) as e:
                self._model_error = e
                log.warning("motion model unavailable (%s): mouths follow speech energy instead", e)
                raise
        return self._model

    def mouth_track(self, audio, fps, n_frames):
        if self.track_fn is not None:
            o, w = self.track_fn(audio, fps, n_frames)
        else:
            try:
                model = self._load_model()
            except (ImportError, FileNotFoundError, OSError):
                o, w = energy_track(audio, fps, n_frames)
            else:
                tr = model.predict(audio, fps=fps, n_frames=n_frames)
                o, w = tr.opening, tr.width
        o = align.resample(o, fps, fps, n_frames)
        w = align.resample(w, fps, fps, n_frames)
        return (align.smooth_series(o, self.smooth_sigma),
                align.smooth_series(w, self.smooth_sigma))

    def frame_renderer(self, template, audio, fps, n_frames):
        opening, width = self.mouth_track(audio, fps, n_frames)
        width_abs = template.median_width * (1.0 + np.asarray(width, np.float64))
        renderer = MouthRenderer(template)

        def per_frame(frame, i, j):
            return renderer(frame, template.landmarks[i], float(opening[j]), float(width_abs[j]))

        return per_frame
