"""Fixtures for the engine tests: generated variants of the shared real media.

Generated media (other audio containers, broken files, synthetic videos) are made with PyAV
in temp directories and never committed.
"""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """Template preparations go here, never beside the shared media."""
    return tmp_path_factory.mktemp("prep_cache")


@pytest.fixture(scope="session")
def tpl3(cache_dir):
    """face_square_3 (590x590, 25 fps, 5 s) prepared."""
    from lipsync.prepare import prepare_template

    return prepare_template(media("face_square_3.mp4"), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def short_template(tmp_path_factory):
    """The first second (25 frames) of face_square_3, re-encoded: for looping tests."""
    from lipsync.media import read_frames

    d = tmp_path_factory.mktemp("short")
    frames = [f for _, f in zip(range(25), read_frames(media("face_square_3.mp4")))]
    return write_video(d / "short.mp4", frames, fps=25)


@pytest.fixture(scope="session")
def face_leaves(tmp_path_factory):
    """1.2 s of face_square_3 whose second half is black (the face leaves the frame)."""
    from lipsync.media import read_frames

    d = tmp_path_factory.mktemp("leaves")
    frames = [f for _, f in zip(range(30), read_frames(media("face_square_3.mp4")))]
    frames = frames[:15] + [np.zeros_like(f) for f in frames[15:]]
    return write_video(d / "leaves.mp4", frames, fps=25)


@pytest.fixture(scope="session")
def no_face_video(tmp_path_factory):
    """1 s of coloured noise: no face anywhere."""
    rng = np.random.default_rng(1)
    d = tmp_path_factory.mktemp("noface")
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(25)]
    return write_video(d / "noise.mp4", frames, fps=25)


@pytest.fixture(scope="session")
def audio_2s(speech_2s):
    from lipsync.audio import analyse_audio

    return analyse_audio(speech_2s)


@pytest.fixture(scope="session")
def engine():
    from lipsync.engines import load_engine

    return load_engine("default", device="cpu")
