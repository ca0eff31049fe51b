import os

import numpy as np
import pytest
from lipsync_testutil import media, write_video

from lipsync import media as M
from lipsync import probing as P
from lipsync.errors import BadInputError, UndecodableMediaError


def test_probe_video():
    info = P.probe(media("face_square_2.mp4"))
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (844, 844)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert info.frame_count == 125
    assert info.video_codec == "h264" and info.audio_codec == "aac"


def test_probe_portrait_hevc():
    info = P.probe(media("portrait_hevc_1080x1920.mp4"))
    assert (info.width, info.height) == (1080, 1920)
    assert info.video_codec == "hevc"


def test_probe_odd_rate_is_variable():
    info = P.probe(media("face_square_1.mp4"))
    assert info.fps == pytest.approx(22.13, abs=0.01)
    assert info.variable_frame_rate


def test_probe_audio_only():
    info = P.probe(media("speech_de_24bit.wav"))
    assert not info.has_video and info.has_audio
    assert info.audio_sample_rate == 48000 and info.audio_channels == 2
    assert info.fps == 0.0


@pytest.mark.parametrize("name", ["truncated", "empty", "text", "noise"])
def test_probe_rejects_broken(broken_files, name):
    with pytest.raises(UndecodableMediaError) as e:
        P.probe(broken_files[name])
    assert "\n" not in str(e.value)


def test_probe_missing(tmp_path):
    with pytest.raises(UndecodableMediaError):
        P.probe(tmp_path / "nope.mp4")


def test_rotation_applied(tmp_path):
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :32] = 255  # left half white
    p = write_video(tmp_path / "rot.mp4", [img] * 5, rotation=90)
    info = P.probe(p)
    assert info.rotation == 90 and (info.width, info.height) == (32, 64)
    frames = list(M.read_frames(p))
    assert len(frames) == 5 and frames[0].shape == (64, 32, 3)
    # 90 degrees counter-clockwise: the left half ends up at the bottom
    assert frames[0][:20].mean() < 40 and frames[0][-20:].mean() > 200


def test_read_frames_constant_rate():
    p = media("face_square_1.mp4")  # variable rate, average 22.13 fps
    n = sum(1 for _ in M.read_frames(p))
    assert n == 135 == M.count_frames(p)
    assert sum(1 for _ in M.read_frames(p, fps=30)) == M.count_frames(p, fps=30)


def test_write_poster(tmp_path):
    out = tmp_path / "poster.jpg"
    P.write_poster(media("portrait_hevc_1080x1920.mp4"), out, max_size=320)
    import cv2

    img = cv2.imread(str(out))
    assert img.shape[:2] == (320, 180)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_decode_audio_wav_variants():
    x = M.decode_audio(media("speech_de_24bit.wav"))  # 24-bit WAVE_FORMAT_EXTENSIBLE
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) / 16000 == pytest.approx(9.34, abs=0.02)
    assert 0.1 < np.abs(x).max() <= 1.0
    y = M.decode_audio(media("face_square_2.mp4"))  # audio track of a video
    assert len(y) / 16000 == pytest.approx(5.0, abs=0.05)


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "opus", "flac", "wav_u8", "wav_f32",
                                 "wav_s32", "wav_8k"])
def test_decode_audio_formats(audio_formats, fmt):
    ref = M.decode_audio(media("speech_en_1.wav"))[: int(1.5 * 16000)]
    x = M.decode_audio(audio_formats[fmt])
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / 16000 - 1.5) < 0.08  # codec priming/padding
    # same speech: envelope correlates with the reference (allow codec delay)
    def env(a):
        n = len(a) // 160
        return np.sqrt((a[: n * 160].reshape(n, 160) ** 2).mean(1))
    e1, e2 = env(ref), env(x)
    n = min(len(e1), len(e2)) - 10
    best = max(np.corrcoef(e1[:n], e2[k:k + n])[0, 1] for k in range(0, 10))
    assert best > 0.9


@pytest.mark.parametrize("name", ["truncated", "empty", "text", "noise"])
def test_decode_audio_rejects_broken(broken_files, name):
    with pytest.raises(BadInputError):
        M.decode_audio(broken_files[name])


def test_decode_audio_no_audio_stream(tmp_path):
    p = write_video(tmp_path / "v.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3)
    with pytest.raises(UndecodableMediaError):
        M.decode_audio(p)


def test_is_silent():
    assert M.is_silent(np.zeros(16000, np.float32))
    assert M.is_silent(np.full(16000, 1e-5, np.float32))
    assert not M.is_silent(M.decode_audio(media("speech_en_1.wav")))


def test_writer_roundtrip_and_atomic(outdir):
    out = outdir / "o.mp4"
    audio = (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    frames = [np.full((31, 45, 3), i * 10, np.uint8) for i in range(25)]
    with M.VideoWriter(out, 45, 31, 25, audio=audio) as w:
        for f in frames:
            w.write(f)
        assert not out.exists()  # only the temp file exists while writing
    assert sorted(os.listdir(outdir)) == ["o.mp4"]
    info = P.probe(out)
    assert (info.width, info.height) == (44, 30)
    assert info.has_audio and info.video_codec == "h264"
    assert info.frame_count == 25
    assert info.duration == pytest.approx(1.0, abs=0.08)
    back = list(M.read_frames(out))
    assert len(back) == 25 and abs(int(back[10].mean()) - 100) <= 3
    # +faststart: the moov atom precedes mdat
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")


def test_writer_abort_leaves_nothing(outdir):
    out = outdir / "o.mp4"
    with pytest.raises(RuntimeError):
        with M.VideoWriter(out, 32, 32, 25) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert os.listdir(outdir) == []
