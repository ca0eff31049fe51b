import os
from pathlib import Path

import numpy as np
import pytest

from lipsync.audio import FEATURE_RATE, AnalysedAudio, analyse_audio
from lipsync.errors import SilentAudioError, UndecodableMediaError

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
WAVS = {"speech_en_1.wav": 5.0, "speech_zh_news.wav": 8.0, "speech_de_24bit.wav": 9.34,
        "portrait_hevc_audio.wav": 9.6}

pytestmark = pytest.mark.skipif(not MEDIA.is_dir(), reason="shared/media not present")


def _write_wav(path, samples, rate=16000):
    import av

    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16)[None], format="s16",
                                           layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.mark.parametrize("name", sorted(WAVS))
def test_analyse_real_wav(name):
    audio = analyse_audio(MEDIA / name)
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(WAVS[name], abs=0.1)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.samples.size == pytest.approx(audio.duration * 16000, abs=1)
    t = audio.n_steps
    assert t == audio.samples.size // 160 + 1
    assert audio.rate == FEATURE_RATE == 100.0
    assert audio.features["logmel"].shape == (t, 80)
    assert audio.features["mfcc"].shape == (t, 13)
    for key in ("energy", "voicing", "pitch", "speech"):
        assert audio.features[key].shape == (t,)
    for value in audio.features.values():
        assert np.isfinite(value).all()
    pitch = audio.features["pitch"]
    voiced = pitch[pitch > 0]
    assert 0.2 < voiced.size / t < 0.95
    assert 70 < np.median(voiced) < 350    # a human voice
    assert len(audio.sha256) == 64


def test_video_file_uses_its_audio_track():
    audio = analyse_audio(MEDIA / "face_square_2.mp4")
    assert audio.duration == pytest.approx(5.0, abs=0.15)


def test_english_gets_phoneme_timings():
    pytest.importorskip("pocketsphinx")
    audio = analyse_audio(MEDIA / "speech_en_1.wav", language="en")
    assert len(audio.phonemes) > 20
    starts = [s for _, s, _ in audio.phonemes]
    assert starts == sorted(starts)
    assert all(e > s for _, s, e in audio.phonemes)
    assert audio.phonemes[-1][2] <= audio.duration + 0.05


def test_save_load_round_trip(tmp_path):
    audio = analyse_audio(MEDIA / "speech_en_1.wav", language="en")
    out = tmp_path / "analysed"
    out.mkdir()
    path = out / "a.npz"
    audio.save(path)
    assert os.listdir(out) == ["a.npz"]     # no temp file left behind
    back = AnalysedAudio.load(path)
    assert back.sha256 == audio.sha256
    assert back.duration == audio.duration and back.sample_rate == audio.sample_rate
    assert back.language == "en" and back.phonemes == audio.phonemes
    np.testing.assert_array_equal(back.samples, audio.samples)
    assert set(back.features) == set(audio.features)
    for key in audio.features:
        np.testing.assert_array_equal(back.features[key], audio.features[key])


def test_silent_audio_is_rejected(tmp_path):
    _write_wav(tmp_path / "silence.wav", np.zeros(16000, np.float32))
    with pytest.raises(SilentAudioError):
        analyse_audio(tmp_path / "silence.wav")


def test_empty_audio_is_rejected(tmp_path):
    _write_wav(tmp_path / "empty.wav", np.zeros(16, np.float32))
    with pytest.raises((SilentAudioError, UndecodableMediaError)):
        analyse_audio(tmp_path / "empty.wav")


def test_garbage_is_undecodable(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(os.urandom(5000))
    with pytest.raises(UndecodableMediaError):
        analyse_audio(path)


def test_truncated_file_is_undecodable(tmp_path):
    data = (MEDIA / "face_square_1.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[:2000])
    with pytest.raises(UndecodableMediaError):
        analyse_audio(path)
