"""Audio analysis: decode once, compute per-time-step features, cache as .npz.

Everything here is plain numpy, so the platform can analyse an upload without importing
torch. Features are on a fixed 100 Hz grid (hop 10 ms): row t describes the
25 ms window centred on t / 100 seconds, so T = N // HOP_LENGTH + 1 for N samples.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .atomic import atomic_path
from .constants import SAMPLE_RATE

HOP_LENGTH = 160          # 10 ms -> 100 Hz features
N_FFT = 400               # 25 ms window
N_MELS = 80
N_MFCC = 13
FEATURE_RATE = SAMPLE_RATE / HOP_LENGTH   # 100.0 Hz
FORMAT_VERSION = 3  # 3: Whisper features from the encoder's third block (speech.ENCODER_BLOCKS)


@dataclass
class AnalysedAudio:
    """One analysed audio file; reusable across templates and workers.

    features (all float32, first axis T at ``rate`` Hz):
      logmel (T, 80)  natural-log mel power, 0-8 kHz
      mfcc   (T, 13)  DCT-II of logmel
      energy (T,)     RMS level in dBFS (floor -100)
      voicing (T,)    periodicity 0..1 (normalised autocorrelation peak)
      pitch  (T,)     f0 in Hz where voiced (voicing > 0.45), else 0
      speech (T,)     0/1 speech activity (energy gate relative to the file's loud frames)
    phonemes: optional [(label, start_s, end_s), ...] from pocketsphinx (English only).
    whisper: (T50, 512) float32 Whisper encoder features at 50 Hz (lipsync.speech), or None
      when not computed (the default engine then computes them itself).
    """

    sha256: str
    samples: np.ndarray
    sample_rate: int
    duration: float
    features: dict[str, np.ndarray]
    rate: float = FEATURE_RATE
    language: str | None = None
    phonemes: list[tuple[str, float, float]] = field(default_factory=list)
    whisper: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        return int(self.features["logmel"].shape[0])

    def save(self, path) -> None:
        """Write to ``path`` (.npz) atomically: temp file in the same directory + rename."""
        path = os.fspath(path)
        meta = {
            "version": FORMAT_VERSION,
            "sha256": self.sha256,
            "sample_rate": self.sample_rate,
            "duration": self.duration,
            "rate": self.rate,
            "language": self.language,
            "phonemes": [[p, float(s), float(e)] for p, s, e in self.phonemes],
            "features": sorted(self.features),
        }
        arrays: dict[str, np.ndarray] = {"samples": np.asarray(self.samples, np.float32),
                  "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        arrays.update({"f_" + k: np.asarray(v) for k, v in self.features.items()})
        if self.whisper is not None:
            arrays["whisper"] = np.asarray(self.whisper, np.float32)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            # numpy's stub types **kwds as if an array could be named allow_pickle
            np.savez(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path) -> AnalysedAudio:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported AnalysedAudio version {meta.get('version')}")
            features = {k: z["f_" + k] for k in meta["features"]}
            samples = z["samples"]
            whisper = z["whisper"] if "whisper" in z else None
        return cls(sha256=meta["sha256"], samples=samples, sample_rate=meta["sample_rate"],
                   duration=meta["duration"], features=features, rate=meta["rate"],
                   language=meta["language"],
                   phonemes=[(p, s, e) for p, s, e in meta["phonemes"]], whisper=whisper)


def analyse_audio(path, *, language=None, speech_features: bool = True,
                  device: str | None = None) -> AnalysedAudio:
    """Decode ``path`` (any container PyAV reads; video files use their audio track) and
    compute features. ``language`` is an ISO code hint ("en", "zh", "cmn", ...); English
    also gets pocketsphinx phoneme timings when pocketsphinx is installed.
    speech_features: also compute the Whisper features (on ``device``, default CPU).

    Raises UndecodableMediaError (not media / no audio stream), SilentAudioError, or
    MissingComponentError when the Whisper model or ctranslate2 is missing.
    """
    from .errors import SilentAudioError

    with open(path, "rb") as f:
        sha = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    samples = _decode(path)
    from .media import is_silent

    if is_silent(samples):
        raise SilentAudioError("The audio is empty or silent, so there is no speech to lip-sync.")
    audio = analyse_samples(samples, language=language)
    audio.sha256 = sha.hexdigest()
    if speech_features:
        from .speech import whisper_features

        audio.whisper = whisper_features(samples, device=device or "cpu")
    return audio


def analyse_samples(samples: np.ndarray, *, language=None, phonemes=True) -> AnalysedAudio:
    """Features for (N,) float32 mono 16 kHz samples in [-1, 1] (no silence check)."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    features = compute_features(samples)
    phones: list[tuple[str, float, float]] = []
    if phonemes and language and language.lower().split("-")[0] in ("en", "eng"):
        from .phonemes import recognise_phonemes  # optional: pocketsphinx may be absent
        phones = recognise_phonemes(samples)
    return AnalysedAudio(sha256="", samples=samples, sample_rate=SAMPLE_RATE,
                         duration=samples.size / SAMPLE_RATE, features=features,
                         language=language, phonemes=phones)


BLOCK_FRAMES = 6000  # 60 s of feature frames per block: memory stays flat with duration


def compute_features(samples: np.ndarray) -> dict[str, np.ndarray]:
    """(N,) float32 16 kHz -> dict of (T, ...) float32 arrays at 100 Hz (see AnalysedAudio).

    Windows are independent, so they are computed a block at a time (an hour of audio peaks
    at the size of one block's windows, not of the whole recording's)."""
    n_frames = samples.size // HOP_LENGTH + 1
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("logmel", "mfcc", "energy", "voicing", "pitch")}
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    for start in range(0, n_frames, BLOCK_FRAMES):
        stop = min(n_frames, start + BLOCK_FRAMES)
        frames = _frames(samples, N_FFT, start, stop)                   # (t, 400)
        spec = np.abs(np.fft.rfft(frames * window, n=512, axis=1)) ** 2   # (t, 257)
        logmel = np.log(np.maximum(spec @ _mel_filters().T, 1e-10)).astype(np.float32)   # (t, 80)
        parts["logmel"].append(logmel)
        parts["mfcc"].append((logmel @ _dct_matrix().T).astype(np.float32))
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        parts["energy"].append((20 * np.log10(np.maximum(rms, 1e-5))).astype(np.float32))
        voicing, pitch = _pitch(samples, start, stop)
        parts["voicing"].append(voicing)
        parts["pitch"].append(pitch)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["speech"] = speech_gate(out["energy"]).astype(np.float32)
    return out


def speech_gate(energy_db: np.ndarray) -> np.ndarray:
    """The one speech/silence rule: (T,) dBFS levels -> (T,) bool, speech where the level is
    within 30 dB of the recording's loud frames (95th percentile) and above -60 dBFS."""
    loud = np.percentile(energy_db, 95) if len(energy_db) else 0.0
    return (energy_db > loud - 30) & (energy_db > -60)


def speech_activity(samples: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,) bool: video frame i (time i / fps) falls in speech (speech_gate on 10 ms
    levels, any speech within the frame's 1 / fps)."""
    n = samples.size // HOP_LENGTH + 1
    levels = []
    for start in range(0, n, BLOCK_FRAMES):
        frames = _frames(samples, N_FFT, start, min(n, start + BLOCK_FRAMES))
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        levels.append(20 * np.log10(np.maximum(rms, 1e-5)))
    gate = speech_gate(np.concatenate(levels)) if levels else np.zeros(0, bool)
    t0 = (np.arange(n_frames) / fps * FEATURE_RATE).astype(int)
    t1 = np.maximum(t0 + 1, (np.arange(1, n_frames + 1) / fps * FEATURE_RATE).astype(int))
    csum = np.concatenate([[0], np.cumsum(gate)])
    t0, t1 = np.clip(t0, 0, len(gate)), np.clip(t1, 0, len(gate))
    return (csum[t1] - csum[t0]) > 0


def _frames(x: np.ndarray, size: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(N,) -> windows [start, stop) of the (N // HOP + 1, size) windows centred on multiples
    of HOP (zero padded)."""
    n = x.size // HOP_LENGTH + 1
    stop = n if stop is None else min(stop, n)
    lo = start * HOP_LENGTH - size // 2                   # first sample of the first window
    hi = (stop - 1) * HOP_LENGTH + size // 2 + size       # a little past the last window's end
    seg = x[max(lo, 0):max(min(hi, x.size), 0)]
    seg = np.pad(seg, (max(0, -lo), max(0, hi - max(lo, 0) - seg.size - max(0, -lo))))
    idx = np.arange(size)[None, :] + HOP_LENGTH * np.arange(stop - start)[:, None]
    return seg[idx]


@cache
def _mel_filters() -> np.ndarray:
    """(80, 257) triangular HTK-mel filters over 0..8 kHz, area-normalised (Slaney)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 257)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (fft_freqs[None] - lo) / (mid - lo)
    down = (hi - fft_freqs[None]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return fb.astype(np.float32)


@cache
def _dct_matrix() -> np.ndarray:
    """(13, 80) orthonormal DCT-II."""
    n = np.arange(N_MELS)
    k = np.arange(N_MFCC)[:, None]
    m = np.cos(np.pi / N_MELS * (n + 0.5) * k) * np.sqrt(2.0 / N_MELS)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def _pitch(samples: np.ndarray, start: int = 0, stop: int | None = None, fmin=60.0, fmax=400.0):
    """Autocorrelation pitch on 40 ms windows [start, stop): (voicing (t,), f0 Hz (t,))."""
    size = 640
    frames = _frames(samples, size, start, stop).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    frames *= np.hanning(size)
    spec = np.fft.rfft(frames, n=2 * size, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :size]
    # Unbias by the window's own autocorrelation so long lags are not penalised.
    w = np.hanning(size)
    wac = np.fft.irfft(np.abs(np.fft.rfft(w, n=2 * size)) ** 2)[:size]
    ac = ac / np.maximum(wac / wac[0], 1e-3)
    lo, hi = int(SAMPLE_RATE / fmax), int(SAMPLE_RATE / fmin)
    seg = ac[:, lo:hi]
    lag = np.argmax(seg, axis=1)
    peak = seg[np.arange(seg.shape[0]), lag]
    voicing = np.clip(peak / np.maximum(ac[:, 0], 1e-12), 0.0, 1.0)
    voicing[ac[:, 0] < 1e-7] = 0.0
    f0 = SAMPLE_RATE / (lag + lo)
    f0 = np.where(voicing > 0.45, f0, 0.0)
    return voicing.astype(np.float32), f0.astype(np.float32)


def _decode(path) -> np.ndarray:
    """(N,) float32 mono 16 kHz; UndecodableMediaError when there is no usable audio."""
    from .media import decode_audio

    return decode_audio(path, sample_rate=SAMPLE_RATE)
