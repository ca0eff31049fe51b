"""Hostile media that are tiny on disk but huge once decoded, built in pytest's tmp folder (never
committed): a WAV whose header declares an absurd sample rate, and an H.264 video whose sequence
parameter set declares 16000×16000 pixels while the file is a few KB."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def wav_with_rate(path: Path, *, rate: int, data_bytes: int = 40 * 1024) -> Path:
    """A valid 16-bit mono WAV of `data_bytes` of noise whose header says `rate` Hz."""
    rng = np.random.default_rng(1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(rng.integers(-3000, 3000, data_bytes // 2, dtype=np.int16).tobytes())
    return path


# --- H.264 SPS surgery ---------------------------------------------------------------------

class _Bits:
    def __init__(self, data: bytes):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        v = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos] == "0":
            zeros += 1
            self.pos += 1
        self.pos += 1
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)


def _ue(v: int) -> str:
    code = f"{v + 1:b}"
    return "0" * (len(code) - 1) + code


def _unescape(nal: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _sps_with_size(nal: bytes, width_mbs: int, height_mbs: int) -> bytes:
    """A baseline-profile SPS NAL (header byte included) rewritten to declare another size."""
    rbsp = _unescape(nal[1:])
    r = _Bits(rbsp)
    profile = r.u(8)
    assert profile == 66, "the builder encodes baseline profile"
    r.u(16)  # constraint flags, level
    out = r.bits[:r.pos]
    start = r.pos
    r.ue()  # seq_parameter_set_id
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    assert poc_type in (0, 2)
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    out += r.bits[start:r.pos]
    r.ue()
    r.ue()  # the size we replace
    out += _ue(width_mbs - 1) + _ue(height_mbs - 1)
    rest = r.bits[r.pos:].rstrip("0")  # the rest ends with the rbsp stop bit "1"
    bits = out + rest
    bits += "0" * (-len(bits) % 8)
    body = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    return nal[:1] + _escape(body)


def h264_declaring(path: Path, *, width: int = 16000, height: int = 16000, frames: int = 3) -> Path:
    """A few-KB raw H.264 (Annex B) stream of 64×64 frames whose SPS declares width×height.

    Any decoder that trusts the header allocates width×height frames before noticing that the
    slices cover one corner. Named .mp4 it passes the extension check (FFmpeg probes content)."""
    import av

    raw = path.with_suffix(".small.h264")
    with av.open(str(raw), "w", format="h264") as out:
        s = out.add_stream("libx264", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast", "profile": "baseline"}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 90 + i, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    data = raw.read_bytes()
    raw.unlink()
    parts = data.split(b"\x00\x00\x00\x01")
    rebuilt = []
    for part in parts:
        if part and part[0] & 0x1F == 7:
            part = _sps_with_size(part, width // 16, height // 16)
        rebuilt.append(part)
    path.write_bytes(b"\x00\x00\x00\x01".join(rebuilt))
    return path


def mp4_declaring(path: Path, *, width: int = 16000, height: int = 16000) -> Path:
    """The same stream as h264_declaring, stream-copied into an MP4 (the size then also sits in
    the avcC box of the header). Remuxed without decoding a frame."""
    import av

    raw = h264_declaring(path.with_suffix(".raw.h264"), width=width, height=height)
    with av.open(str(raw), options={"max_pixels": "4096"}) as src, av.open(str(path), "w", format="mp4") as out:
        ivs = src.streams.video[0]
        ovs = out.add_stream_from_template(ivs)
        step = int(1 / (25 * ivs.time_base))
        n = 0
        for packet in src.demux(ivs):
            if not packet.size:
                continue
            packet.pts = packet.dts = n * step
            packet.stream = ovs
            out.mux(packet)
            n += 1
    raw.unlink()
    return path


def long_gop_video(path: Path, *, seconds: float = 60.0, size=(640, 360), fps: int = 25) -> Path:
    """A small H.264 file with a single keyframe: a seek to its middle or end decodes every
    frame from the start (what makes posters and end-of-file checks expensive)."""
    import av

    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "g": "100000", "keyint_min": "100000", "sc_threshold": "0", "crf": "30"}
        for i in range(int(seconds * fps)):
            img = np.broadcast_to(((x + i * 3) % 256).astype(np.uint8), (h, w, 3))
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path
