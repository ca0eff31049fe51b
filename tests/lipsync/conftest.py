"""Fixtures for the engine tests: generated variants of the shared real media.

Generated media (other audio containers, broken files, synthetic videos) are made with PyAV
in temp directories and never committed.
"""

from __future__ import annotations

import numpy as np
import pytest

from lipsync_testutil import media, write_audio, write_video  # noqa: F401


@pytest.fixture(scope="session")
def speech_2s(tmp_path_factory) -> Path:
    """A 2 s, 16 kHz mono wav cut from speech_en_1.wav (short keeps renders fast)."""
    from lipsync.media import decode_audio

    x = decode_audio(media("speech_en_1.wav"))[: 2 * 16000]
    return write_audio(tmp_path_factory.mktemp("audio") / "speech_2s.wav", x, 16000,
                       "pcm_s16le", sample_fmt="s16")


@pytest.fixture(scope="session")
def audio_formats(tmp_path_factory) -> dict[str, Path]:
    """The same 1.5 s of stereo 44.1 kHz speech in every audio format the engine accepts."""
    from lipsync.media import decode_audio

    d = tmp_path_factory.mktemp("formats")
    mono = decode_audio(media("speech_en_1.wav"), sample_rate=44100)[: int(1.5 * 44100)]
    st = np.stack([mono, mono * 0.5])
    m48 = decode_audio(media("speech_en_1.wav"), sample_rate=48000)[: int(1.5 * 48000)]
    m8 = decode_audio(media("speech_en_1.wav"), sample_rate=8000)[: int(1.5 * 8000)]
    out = {
        "mp3": write_audio(d / "a.mp3", st, 44100, "libmp3lame", layout="stereo"),
        "m4a": write_audio(d / "a.m4a", st, 44100, "aac", layout="stereo"),
        "ogg": write_audio(d / "a.ogg", st, 44100, "vorbis", layout="stereo"),
        "opus": write_audio(d / "a.opus", np.stack([m48, m48]), 48000, "libopus", fmt="ogg", layout="stereo"),
        "flac": write_audio(d / "a.flac", st, 44100, "flac", sample_fmt="s16", layout="stereo"),
        "wav_u8": write_audio(d / "a_u8.wav", st, 44100, "pcm_u8", sample_fmt="u8",
                              layout="stereo"),
        "wav_f32": write_audio(d / "a_f32.wav", st, 44100, "pcm_f32le", sample_fmt="flt",
                               layout="stereo"),
        "wav_s32": write_audio(d / "a_s32.wav", st, 44100, "pcm_s32le", sample_fmt="s32",
                               layout="stereo"),
        "wav_8k": write_audio(d / "a_8k.wav", m8, 8000, "pcm_s16le",
                              sample_fmt="s16"),
    }
    return out


@pytest.fixture(scope="session")
def broken_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("broken")
    src = media("face_square_3.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(src[: len(src) // 50])
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 100)
    (d / "noise.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    return {p.stem: p for p in d.iterdir()}


@pytest.fixture
def outdir(tmp_path):
    """An empty directory of its own (tmp_path itself may hold the platform's media/)."""
    d = tmp_path / "lipsync_out"
    d.mkdir()
    return d
