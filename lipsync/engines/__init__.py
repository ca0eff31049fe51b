"""Pluggable render engines behind one interface: ``load_engine(name)``.

"default": Whisper features -> lip shapes -> the template's own mouths, warped and blended.
"energy": the same renderer driven by speech loudness only (explicit, for tests and comparisons).
"wav2lip": a Wav2Lip-compatible generator loaded from a user-supplied checkpoint.
"""

from __future__ import annotations

from .base import Engine, RenderResult, energy_track

ENGINES = {
    "default": ("lipsync.engines.default", "DefaultEngine"),
    "energy": ("lipsync.engines.energy", "EnergyEngine"),
    "wav2lip": ("lipsync.engines.wav2lip", "Wav2LipEngine"),
}


def available_engines() -> list[str]:
    return sorted(ENGINES)


def load_engine(name: str = "default", *, device: str | None = None, **options) -> Engine:
    """Instantiate an engine by name.  device None = "cuda" when torch sees one, else "cpu".
    Unknown names raise ValueError."""
    import importlib

    if name not in ENGINES:
        raise ValueError(f"Unknown engine {name!r}; available: {', '.join(available_engines())}.")
    if device is None:
        device = default_device()
    module, cls = ENGINES[name]
    return getattr(importlib.import_module(module), cls)(device=device, **options)


def default_device() -> str:
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except ImportError:
        return "cpu"


__all__ = ["Engine", "RenderResult", "load_engine", "available_engines", "energy_track",
           "default_device"]
