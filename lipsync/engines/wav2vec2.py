"""Wav2Vec2 audio features from a LOCAL transformers checkpoint directory (no downloads).

transformers is imported lazily: it is only needed when this loader is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LipsyncError


class Wav2Vec2Features:
    """Wraps a transformers Wav2Vec2Model.  ``rate`` is the feature rate in Hz
    (16000 / product of the conv strides: 50 Hz for the standard models)."""

    def __init__(self, model, device="cpu"):
        self.model = model.to(device).eval()
        self.device = device
        self.rate = 16000.0 / float(np.prod(model.config.conv_stride))
        self.dim = int(model.config.hidden_size)

    def __call__(self, samples: np.ndarray, *, layer: int | None = None) -> np.ndarray:
        """samples (N,) float32 16 kHz mono -> (T, D) float32 at self.rate Hz (last hidden
        state, or hidden state number `layer`).  The input is normalised to zero mean and
        unit variance, as Wav2Vec2FeatureExtractor does."""
        import torch

        x = np.asarray(samples, np.float32)
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x)[None].to(self.device),
                             output_hidden_states=layer is not None)
        h = out.last_hidden_state if layer is None else out.hidden_states[layer]
        return h[0].float().cpu().numpy()


def load_wav2vec2(local_dir, *, device: str = "cpu") -> Wav2Vec2Features:
    """Load a Wav2Vec2Model with from_pretrained(local_dir, local_files_only=True)."""
    local_dir = Path(local_dir)
    if not (local_dir / "config.json").is_file():
        raise LipsyncError(f"{str(local_dir)!r} is not a local Wav2Vec2 model directory.")
    try:
        from transformers import Wav2Vec2Model
    except ImportError as e:
        raise LipsyncError("The wav2vec2 features need the 'transformers' package.") from e
    model = Wav2Vec2Model.from_pretrained(str(local_dir), local_files_only=True)
    return Wav2Vec2Features(model, device=device)
