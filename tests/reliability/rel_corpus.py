"""The bad-input corpus: broken and hostile media made from ../shared/media with PyAV and byte
surgery, into a temporary folder (never committed). Each builder returns (path, upload name)."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np


def _encode_video(path: Path, frames, *, size=(128, 128), fps=25, codec="libx264", audio: np.ndarray | None = None):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "40"}
        astream = out.add_stream("aac", rate=16000, layout="mono") if audio is not None else None
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if astream is not None:
            _encode_audio_into(out, astream, audio, 16000)
    return path


def _encode_audio_into(out, stream, samples: np.ndarray, rate: int):
    import av

    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = rate
    frame.pts, frame.time_base = 0, Fraction(1, rate)
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=stream.codec_context.sample_rate)
    for chunk in resampler.resample(frame):
        for packet in stream.encode(chunk):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        _encode_audio_into(out, stream, samples, rate)
    return path


def empty_wav(path: Path, rate: int = 16000) -> Path:
    """A well-formed WAV header (mono, 16-bit) whose data chunk holds no samples."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"")
    return path


def speech(media_dir: Path, seconds: float = 1.5, rate: int = 16000) -> np.ndarray:
    from lipsync.media import decode_audio

    samples = decode_audio(media_dir / "speech_en_1.wav", sample_rate=rate)
    return samples[: int(seconds * rate)].astype(np.float32)


def truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def jpeg(media_dir: Path, dst: Path) -> Path:
    from lipsync.probing import write_poster

    write_poster(media_dir / "face_square_1.mp4", dst)
    return dst


def mkv_declaring_hours(src: Path, dst: Path, hours: float = 3.0) -> Path:
    """The shared video remuxed to Matroska, its Segment Duration element patched to `hours`."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    data = bytearray(dst.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, 8-byte float, in TimecodeScale units (1 ms)
    assert at > 0, "no Duration element"
    data[at + 3:at + 11] = struct.pack(">d", hours * 3600 * 1000.0)
    dst.write_bytes(bytes(data))
    return dst


def wav_declaring_hours(dst: Path, hours: float = 3.0, rate: int = 16000) -> Path:
    """A WAV header that promises `hours` hours of 16-bit mono audio, followed by 64 bytes."""
    data_bytes = int(hours * 3600 * rate * 2)
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    dst.write_bytes(header + bytes(range(64)))
    return dst


def build(media_dir: Path, folder: Path) -> dict[str, dict]:
    """{case: {"path": Path, "name": upload name}} for templates ("video") and audio ("audio")."""
    folder.mkdir(parents=True, exist_ok=True)
    face = media_dir / "face_square_1.mp4"
    rng = np.random.default_rng(7)
    wav16 = write_wav(folder / "speech16k.wav", speech(media_dir), 16000)
    video = {
        "zero-byte": (folder / "zero.mp4", "zero.mp4"),
        "truncated-10": (truncated(face, folder / "t10.mp4", 0.10), "t10.mp4"),
        "truncated-50": (truncated(face, folder / "t50.mp4", 0.50), "t50.mp4"),
        "truncated-90": (truncated(face, folder / "t90.mp4", 0.90), "t90.mp4"),
        "wrong-extension": (face, "presenter.txt"),
        "text-file": (folder / "notes.mp4", "notes.mp4"),
        "jpeg-renamed": (jpeg(media_dir, folder / "photo.jpg"), "photo.mp4"),
        "audio-only-mp4": (None, "voice.mp4"),
        "declares-3-hours": (mkv_declaring_hours(face, folder / "long.mkv"), "long.mkv"),
        "8000x8000": (_encode_video(folder / "huge.mp4", [np.full((8000, 8000, 3), 90, np.uint8)], size=(8000, 8000)), "huge.mp4"),
        "path-traversal-name": (face, "../../etc/passwd.mp4"),
        "unicode-name": (face, "名字 😀.mp4"),
    }
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("Meeting notes\nThis is not a video.\n" * 50)
    import av

    audio_only = folder / "voice.mp4"
    with av.open(str(audio_only), "w") as out:
        _encode_audio_into(out, out.add_stream("aac", rate=16000, layout="mono"), speech(media_dir), 16000)
    video["audio-only-mp4"] = (audio_only, "voice.mp4")

    audio = {
        "zero-byte": (folder / "zero.wav", "zero.wav"),
        "truncated-10": (truncated(wav16, folder / "a10.wav", 0.10), "a10.wav"),
        "truncated-50": (truncated(wav16, folder / "a50.wav", 0.50), "a50.wav"),
        "text-file": (folder / "notes.wav", "notes.wav"),
        "jpeg-renamed": (folder / "photo.jpg", "photo.mp3"),
        "video-without-audio": (_encode_video(folder / "mute.mp4", [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)] * 10,
                                              size=(64, 64)), "mute.mp4"),
        "wrong-extension": (wav16, "speech.exe"),
        "8-khz": (write_wav(folder / "s8k.wav", speech(media_dir, rate=8000), 8000), "s8k.wav"),
        "96-khz": (write_wav(folder / "s96k.wav", speech(media_dir, rate=96000), 96000), "s96k.wav"),
        "silent": (write_wav(folder / "silent.wav", np.zeros(16000 * 2, np.float32), 16000), "silent.wav"),
        # a valid header over an audio stream with no samples at all
        "no-samples": (empty_wav(folder / "nosamples.wav"), "nosamples.wav"),
        "declares-3-hours": (wav_declaring_hours(folder / "long.wav"), "long.wav"),
        "path-traversal-name": (wav16, "../../../etc/passwd.wav"),
        "unicode-name": (wav16, "语音 🎤.wav"),
    }
    (folder / "zero.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("RIFF? no. Just text.\n" * 40)

    render = {
        "no-face-noise": (_encode_video(folder / "noise.mp4", [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(25)],
                                        size=(96, 96)), "noise.mp4"),
        "one-frame": (_encode_video(folder / "one.mp4", [_face_frame(face)], size=_size(face)), "one.mp4"),
    }
    return {"video": _named(video), "audio": _named(audio), "render": _named(render)}


def _named(cases):
    return {k: {"path": p, "name": n} for k, (p, n) in cases.items()}


def _face_frame(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _size(path: Path):
    img = _face_frame(path)
    return img.shape[1], img.shape[0]
