"""Mouthpiece's lip-sync engine (no Django).  See docs/ENGINE_CONTRACT.md.

Heavy modules (torch, mediapipe, PyAV) are imported lazily on first attribute access.
"""

from __future__ import annotations

import importlib

from .errors import (
    BadInputError,
    LipsyncError,
    MissingComponentError,
    NoFaceError,
    RenderCancelled,
    SilentAudioError,
    UndecodableMediaError,
)

_LAZY = {
    "MediaInfo": "probing", "probe": "probing", "write_poster": "probing", "decode_audio": "media",
    "PreparedTemplate": "prepare", "prepare_template": "prepare",
    "AnalysedAudio": "audio", "analyse_audio": "audio",
    "MouthModel": "mouth_model", "whisper_features": "speech",
    "Engine": "engines", "RenderResult": "engines", "load_engine": "engines",
    "available_engines": "engines",
    "mouth_shape_series": "evaluate", "sync_score": "evaluate",
    "self_reenactment": "evaluate",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lipsync' has no attribute {name!r}")


def render_file(template_path, audio_path, out_path, *, engine="default", device=None,
                fps=None, progress=None, cancelled=None, cache_dir=None, **options):
    """Prepare (cached), analyse and render in one call; returns a RenderResult.

    engine: a name for load_engine or an Engine instance.  progress(fraction, stage) receives
    the stages "preparing", "analysing", "rendering", "encoding"."""
    import os
    import time

    from .audio import analyse_audio
    from .engines import load_engine
    from .prepare import prepare_template

    for p in (template_path, audio_path):
        if not os.path.isfile(p):
            raise UndecodableMediaError(f"The file {os.path.basename(str(p))!r} does not exist.")
    # engine and audio first: cheap, and a bad name or audio file then fails before the
    # template is prepared (and its cache written)
    eng = engine if hasattr(engine, "render") else load_engine(engine, device=device, **options)
    t0 = time.perf_counter()
    audio = analyse_audio(audio_path)
    t1 = time.perf_counter()
    if cancelled is not None and cancelled():
        raise RenderCancelled()
    tpl = prepare_template(template_path, cache_dir=cache_dir, progress=progress,
                           cancelled=cancelled)
    t2 = time.perf_counter()
    res = eng.render(tpl, audio, out_path, fps=fps, progress=progress, cancelled=cancelled,
                     audio_source=audio_path)
    res.timings = {"audio": t1 - t0, "preparing": t2 - t1, **res.timings}
    return res


__all__ = ["LipsyncError", "BadInputError", "MissingComponentError", "UndecodableMediaError", "NoFaceError",
           "SilentAudioError", "RenderCancelled", "render_file", *_LAZY]
