"""Pluggable render engines behind one interface: ``load_engine(name)``.

"default": CPU landmark-warp renderer driven by lipsync.motion's audio->mouth model.
"wav2lip": a Wav2Lip-compatible generator loaded from a user-supplied checkpoint.
"""

from __future__ import annotations

from .base import Engine, RenderResult, energy_track

ENGINES = {
    "default": ("lipsync.engines.default", "DefaultEngine"),
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
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


__all__ = ["Engine", "RenderResult", "load_engine", "available_engines", "energy_track",
           "default_device"]
