import math
from pathlib import Path

import numpy as np
import pytest

from lipsync.audio import analyse_audio, analyse_samples
from lipsync.motion import DEFAULT_WEIGHTS, MouthTrack, load_motion_model

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
needs_media = pytest.mark.skipif(not MEDIA.is_dir(), reason="shared/media not present")


@pytest.fixture(scope="module")
def model():
    return load_motion_model()


def test_committed_weights_are_small():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 1024 * 1024


@needs_media
@pytest.mark.parametrize("fps", [25.0, 1350 / 61, 30.0])
def test_track_length_and_rate(model, fps):
    audio = analyse_audio(MEDIA / "speech_en_1.wav")
    track = model.predict(audio, fps=fps)
    assert isinstance(track, MouthTrack)
    assert track.fps == fps
    assert len(track) == math.ceil(audio.duration * fps - 1e-6)
    assert track.opening.shape == track.width.shape == (len(track),)
    assert track.opening.dtype == np.float32
    assert np.isfinite(track.opening).all() and np.isfinite(track.width).all()
    assert (track.opening >= 0).all()
    assert 0.02 < track.opening.max() < 0.8      # inner-lip gap / eye distance
    assert np.abs(track.width).max() < 0.5


@needs_media
def test_n_frames_pads_with_rest(model):
    audio = analyse_audio(MEDIA / "speech_en_1.wav")
    n = math.ceil(audio.duration * 25)
    track = model.predict(audio, fps=25, n_frames=n + 20)
    assert len(track) == n + 20
    assert (track.opening[-15:] == 0).all()
    assert len(model.predict(audio, fps=25, n_frames=10)) == 10


@needs_media
def test_closed_in_silence_moving_in_speech(model):
    speech = analyse_audio(MEDIA / "speech_en_1.wav").samples[: 3 * 16000]
    rng = np.random.default_rng(0)
    silence = (rng.standard_normal(16000) * 1e-4).astype(np.float32)   # quiet room
    audio = analyse_samples(np.concatenate([silence, speech, silence]))
    track = model.predict(audio, fps=25)
    quiet = np.r_[track.opening[3:22], track.opening[-22:-3]]
    talk = track.opening[30:95]
    assert quiet.mean() < 0.35 * talk.mean()
    assert quiet.max() < 0.06
    assert talk.std() > 0.02          # it moves, not a constant half-open mouth


def _phone_means(model, text, voice):
    from lipsync.phonemes import synthesize
    from lipsync.visemes import classes

    samples, phones = synthesize(text, voice, rate=140)
    samples = np.pad(samples, (3200, 3200))
    steps = model.predict_steps(analyse_samples(samples))
    closed, open_ = [], []
    for label, start, end in phones:
        c = classes(label)
        i = int(round((start + end) / 2 * 100)) + 20
        if c == ["bilabial"]:
            closed.append(steps[i, 0])
        elif c[0] in ("open", "open_front"):
            open_.append(steps[i, 0])
    return np.array(closed), np.array(open_)


@pytest.mark.parametrize("text,voice", [("mama papa baba, pa ma ba", "en"),
                                        ("papá mamá, mapa, pan", "es"),
                                        ("Papa, Mama, Baba", "de"),
                                        ("妈妈 爸爸 怕 把", "cmn")])
def test_bilabials_close_more_than_open_vowels(model, text, voice):
    pytest.importorskip("espeakng_loader")
    closed, open_ = _phone_means(model, text, voice)
    assert len(closed) >= 3 and len(open_) >= 3
    assert closed.mean() < 0.6 * open_.mean()


def test_rounded_vowels_are_narrower_than_spread(model):
    pytest.importorskip("espeakng_loader")
    from lipsync.phonemes import synthesize

    def mean_width(text):
        samples, _ = synthesize(text, "en", rate=120)
        steps = model.predict_steps(analyse_samples(np.pad(samples, (1600, 1600))))
        speech = steps[20:-20]
        return float(np.median(speech[:, 1]))

    assert mean_width("ooh who, ooh you, moo two") < mean_width("eee see, key, tea, bee, we")
