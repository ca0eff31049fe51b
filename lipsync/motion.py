"""Audio -> mouth motion: a small dilated 1-D conv net over log-mel features.

The net sees only audio features (normalised log-mel + relative energy, see
lipsync.dataset.input_features), never phoneme labels, so it runs on any language. It
predicts two mouth-shape channels at the 100 Hz feature rate, which predict() resamples
to the video frame rate. torch is imported lazily: the platform imports this module for
MouthTrack without paying for torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "motion.pt"


@dataclass
class MouthTrack:
    """Per-video-frame mouth shape.

    opening: (T,) inner-lip gap / inter-ocular distance, absolute (0 = closed, ~0.3 wide open)
    width:   (T,) relative change of mouth width vs the speaker's median
             (0 neutral, about -0.15 rounded "o/u", +0.1 spread "i/e")
    """

    fps: float
    opening: np.ndarray
    width: np.ndarray

    def __len__(self) -> int:
        return int(self.opening.shape[0])


def build_net(n_in: int = 81, channels: int = 96, dilations=(1, 2, 4, 8, 4), dropout=0.1):
    """Dilated residual conv net, (B, n_in, T) -> (B, 2, T); receptive field +-19 frames
    (+-190 ms at 100 Hz)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.conv = nn.Conv1d(channels, channels, 3, padding=d, dilation=d)
            self.norm = nn.GroupNorm(1, channels)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return x + self.drop(torch.nn.functional.gelu(self.norm(self.conv(x))))

    class MotionNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Conv1d(n_in, channels, 5, padding=2)
            self.blocks = nn.Sequential(*[Block(d) for d in dilations])
            self.out = nn.Conv1d(channels, 2, 1)

        def forward(self, x):
            return self.out(self.blocks(torch.nn.functional.gelu(self.inp(x))))

    return MotionNet()


class MotionModel:
    """Wraps the net: AnalysedAudio -> MouthTrack."""

    def __init__(self, net, config: dict, device="cpu"):
        self.net = net.to(device).eval()
        self.config = config
        self.device = device

    def predict_steps(self, audio) -> np.ndarray:
        """(T, 2) [opening, width] at the audio's feature rate (100 Hz)."""
        import torch

        from .dataset import input_features

        x = input_features(audio.features)
        with torch.inference_mode():
            y = self.net(torch.from_numpy(x.T[None]).to(self.device))[0].T.cpu().numpy()
        y = y.astype(np.float64)
        y[:, 0] = np.maximum(y[:, 0], 0.0)
        return y

    def predict(self, audio, *, fps: float, n_frames: int | None = None) -> MouthTrack:
        """Mouth track for ``audio`` at ``fps``; frame i shows time i / fps.

        n_frames defaults to ceil(duration * fps); frames past the audio are at rest.
        """
        steps = self.predict_steps(audio)
        rate = float(audio.rate)
        if n_frames is None:
            n_frames = int(np.ceil(audio.duration * fps - 1e-6))
        # average each frame's exposure window (1 / fps) before sampling: no aliasing at 25 fps
        k = max(1, int(round(rate / fps)))
        if k > 1:
            kernel = np.ones(k) / k
            steps = np.stack([np.convolve(np.pad(c, (k // 2, k - 1 - k // 2), mode="edge"),
                                          kernel, mode="valid") for c in steps.T], 1)
        t = np.arange(n_frames) / fps * rate
        grid = np.arange(steps.shape[0])
        inside = t <= grid[-1]
        opening = np.where(inside, np.interp(t, grid, steps[:, 0]), 0.0)
        width = np.where(inside, np.interp(t, grid, steps[:, 1]), 0.0)
        return MouthTrack(fps=float(fps), opening=opening.astype(np.float32),
                          width=width.astype(np.float32))


def load_motion_model(path=None, *, device="cpu") -> MotionModel:
    """Load the committed weights (lipsync/weights/motion.pt) or ``path``."""
    import torch

    ckpt = torch.load(path or DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    config = dict(ckpt["config"])
    net = build_net(**config["net"])
    net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return MotionModel(net, config, device=device)
