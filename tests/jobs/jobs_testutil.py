"""Helpers shared by the jobs tests."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.uploadedfile import TemporaryUploadedFile


def cut_audio(src: Path, dst: Path, seconds: float, *, rate: int = 16000) -> Path:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        written, limit = 0, int(seconds * rate)
        for frame in inp.decode(audio=0):
            for chunk in resampler.resample(frame):
                if written >= limit:
                    break
                for packet in stream.encode(chunk):
                    out.mux(packet)
                written += chunk.samples
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def upload_of(path: Path, name: str | None = None) -> TemporaryUploadedFile:
    """What Django hands a view for an upload: a temp file on disk (never in memory)."""
    name = name or path.name
    upload = TemporaryUploadedFile(name, "application/octet-stream", path.stat().st_size, None)
    with open(path, "rb") as src:
        shutil.copyfileobj(src, upload.file)
    upload.file.flush()
    upload.seek(0)
    return upload


def probe(path):
    from lipsync.media import probe as _probe

    return _probe(path)
