"""Helpers for the engine tests: paths to the shared real media, PyAV writers.

Generated media (other audio containers, broken files, synthetic videos) are made with PyAV
in temp directories and never committed.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

MEDIA = Path(__file__).resolve().parents[2] / ".." / "shared" / "media"


def media(name: str) -> Path:
    p = MEDIA / name
    if not p.exists():
        pytest.skip(f"test media {name} not available")
    return p


def write_audio(path, samples: np.ndarray, rate: int, codec: str, fmt: str | None = None,
                sample_fmt: str | None = None, layout: str = "mono") -> Path:
    """Encode (C, N) or (N,) float32 samples with PyAV into `path`."""
    x = np.atleast_2d(np.asarray(samples, np.float32))
    c = av.open(str(path), "w", format=fmt)
    s = c.add_stream(codec, rate=rate)
    s.layout = layout
    if sample_fmt:
        s.format = sample_fmt
    if codec in ("vorbis", "opus"):
        s.codec_context.options = {"strict": "experimental"}
    step = 1024
    for i in range(0, x.shape[1], step):
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + step]), format="fltp",
                                       layout=layout)
        f.sample_rate = rate
        f.pts = i
        f.time_base = Fraction(1, rate)
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    return Path(path)


def write_video(path, frames, fps=25, codec="libx264", audio=None, audio_rate=16000,
                rotation=0) -> Path:
    """Encode an iterable of (H, W, 3) uint8 RGB frames (even size) with optional mono audio."""
    c = av.open(str(path), "w")
    vs = None
    for i, img in enumerate(frames):
        if vs is None:
            vs = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            vs.width, vs.height = img.shape[1], img.shape[0]
            vs.pix_fmt = "yuv420p"
            vs.options = {"preset": "ultrafast"} if codec == "libx264" else {}
            if rotation:
                vs.set_display_rotation(rotation)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            c.mux(p)
    for p in vs.encode(None):
        c.mux(p)
    c.close()
    if audio is not None:  # remux with audio: simpler to write a second file
        tmp = Path(str(path) + ".v.mp4")
        Path(path).rename(tmp)
        src = av.open(str(tmp))
        out = av.open(str(path), "w")
        ov = out.add_stream_from_template(src.streams.video[0])
        a = out.add_stream("aac", rate=audio_rate)
        a.layout = "mono"
        for p in src.demux(src.streams.video[0]):
            if p.dts is None:
                continue
            p.stream = ov
            out.mux(p)
        x = np.asarray(audio, np.float32)
        for i in range(0, len(x), 1024):
            f = av.AudioFrame.from_ndarray(x[None, i:i + 1024].copy(), format="fltp",
                                           layout="mono")
            f.sample_rate = audio_rate
            f.pts = i
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
        out.close()
        src.close()
        tmp.unlink()
    return Path(path)


