"""A Wav2Lip-compatible engine: the original generator on 96x96 face crops, pasted back with
feathering over the lower half of the face box.  The checkpoint is a local file the user
supplies (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LipsyncError
from .base import Engine

MEL_RATE = 80.0       # mel frames per second (hop 200 at 16 kHz)
MEL_STEP = 16         # mel frames per window


def wav2lip_mel(samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """Wav2Lip's mel spectrogram: (80, T) at 80 Hz, pre-emphasis 0.97, n_fft 800, hop 200,
    fmin 55, fmax 7600, ref 20 dB, symmetric normalisation to [-4, 4]."""
    from scipy.signal import lfilter, stft

    x = lfilter([1, -0.97], [1], samples.astype(np.float64))
    _, _, Z = stft(x, fs=sample_rate, window="hann", nperseg=800, noverlap=600, nfft=800,
                   boundary="even", padded=True)
    S = np.abs(Z) * 400  # scipy scales by 1/sum(window); undo to match librosa's magnitude
    mel = _mel_basis(sample_rate) @ S
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip((2 * 4) * ((db + 100) / 100) - 4, -4, 4).astype(np.float32)


def _mel_basis(sr, n_fft=800, n_mels=80, fmin=55.0, fmax=7600.0):
    """Slaney-style mel filterbank (librosa's default): (80, n_fft // 2 + 1)."""
    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        lin = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, lin)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
        fb[i] *= 2.0 / (hi - lo)
    return fb


def mel_window(mel: np.ndarray, frame: int, fps: float) -> np.ndarray:
    """The (80, 16) mel window Wav2Lip pairs with video frame `frame` at `fps`."""
    start = int(MEL_RATE * frame / fps)
    start = min(max(start, 0), max(mel.shape[1] - MEL_STEP, 0))
    w = mel[:, start:start + MEL_STEP]
    if w.shape[1] < MEL_STEP:
        w = np.pad(w, ((0, 0), (0, MEL_STEP - w.shape[1])), mode="edge")
    return w


def face_box(lm: np.ndarray, shape) -> tuple[int, int, int, int]:
    """Square face box (x0, y0, x1, y1) from landmarks, padded below like Wav2Lip's
    pads=(0, 10, 0, 0) so the chin is inside."""
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    y1 += 0.1 * (y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    s = max(x1 - x0, y1 - y0) / 2
    H, W = shape[:2]
    return (int(max(cx - s, 0)), int(max(cy - s, 0)), int(min(cx + s, W)), int(min(cy + s, H)))


class Wav2LipEngine(Engine):
    name = "wav2lip"

    def __init__(self, device: str = "cpu", *, checkpoint=None, bgr: bool = True, **options):
        """checkpoint: path of a Wav2Lip generator checkpoint (required).  bgr: the original
        checkpoints were trained on BGR images (cv2.imread)."""
        super().__init__(device, **options)
        if not checkpoint:
            raise LipsyncError("The wav2lip engine needs a local checkpoint file (--checkpoint).")
        if not Path(checkpoint).is_file():
            raise LipsyncError(f"The wav2lip checkpoint {str(checkpoint)!r} does not exist.")
        from .wav2lip_model import load_wav2lip

        try:
            self.model = load_wav2lip(checkpoint, device=device)
        except Exception as e:
            raise LipsyncError(f"The file {Path(checkpoint).name!r} is not a Wav2Lip "
                               "checkpoint.") from e
        self.bgr = bgr

    def frame_renderer(self, template, audio, fps, n_frames):
        import cv2
        import torch

        mel = wav2lip_mel(audio.samples, audio.sample_rate)

        def per_frame(frame, i, j):
            x0, y0, x1, y1 = face_box(template.landmarks[i], frame.shape)
            if x1 - x0 < 16 or y1 - y0 < 16:
                return frame
            face = cv2.resize(frame[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)
            if self.bgr:
                face = face[..., ::-1]
            masked = face.copy()
            masked[48:] = 0
            inp = np.concatenate([masked, face], axis=2).transpose(2, 0, 1)[None] / 255.0
            a = mel_window(mel, j, fps)[None, None]
            with torch.inference_mode():
                y = self.model(torch.from_numpy(a).float().to(self.device),
                               torch.from_numpy(inp).float().to(self.device))
            pred = (y[0].permute(1, 2, 0).cpu().numpy() * 255.0)
            if self.bgr:
                pred = pred[..., ::-1]
            w, h = x1 - x0, y1 - y0
            pred = cv2.resize(np.ascontiguousarray(pred), (w, h), interpolation=cv2.INTER_LINEAR)
            # feathered paste over the lower half only, where Wav2Lip generates
            alpha = np.zeros((h, w), np.float32)
            alpha[int(h * 0.5):int(h * 0.97), int(w * 0.08):int(w * 0.92)] = 1.0
            k = max(3, (min(w, h) // 12) | 1)
            alpha = cv2.GaussianBlur(alpha, (k, k), 0)[..., None]
            out = frame.copy()
            crop = out[y0:y1, x0:x1].astype(np.float32)
            out[y0:y1, x0:x1] = np.clip(crop + alpha * (pred - crop) + 0.5, 0, 255).astype(np.uint8)
            return out

        return per_frame
