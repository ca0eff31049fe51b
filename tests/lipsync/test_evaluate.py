"""The quality measures: mouth-shape series, sync score, fidelity, self-reenactment."""

import numpy as np
import pytest
from lipsync_testutil import media

from lipsync import evaluate as E


def test_mouth_shape_series_real_clip(short_template):
    o, w = E.mouth_shape_series(short_template)
    assert o.shape == w.shape == (25,)
    assert np.isfinite(o).all() and o.std() > 0.005
    assert 0.3 < np.nanmedian(w) < 1.5


def test_mouth_shape_series_nan_without_face(face_leaves):
    o, _ = E.mouth_shape_series(face_leaves)
    assert np.isfinite(o[:12]).all() and np.isnan(o[16:]).all()


def test_pearson():
    a = np.arange(10.0)
    assert E.pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert np.isnan(E.pearson(a, np.ones(10)))
    assert E.pearson(np.r_[a, np.nan], np.r_[a, 3.0]) == pytest.approx(1.0)


def test_jitter_tells_a_shaking_mouth_from_a_smooth_one():
    t = np.arange(100) / 25.0
    smooth = 0.1 + 0.05 * np.sin(2 * np.pi * t)
    shaking = smooth + np.random.default_rng(0).normal(0, 0.01, len(t))
    assert E.jitter(np.linspace(0, 1, 50)) == pytest.approx(0.0, abs=1e-12)
    assert E.jitter(shaking) > 3 * E.jitter(smooth)
    with_gap = smooth.copy()
    with_gap[40:45] = np.nan
    assert E.jitter(with_gap) == pytest.approx(E.jitter(smooth), rel=0.1)


def test_sync_from_series_finds_lag():
    rng = np.random.default_rng(0)
    fps, T = 25.0, 200
    env = np.abs(rng.standard_normal(T)).repeat(640)
    audio = (rng.standard_normal(T * 640) * env).astype(np.float32)
    e = E.speech_energy(audio, fps, T)
    de = np.abs(np.diff(e, prepend=e[:1]))
    motion = np.roll(de, 2)  # video two frames late
    s = E.sync_from_series(motion, audio, fps)
    assert s["lag"] == 2 and s["r"] > 0.9 and s["z"] > 3
    static = E.sync_from_series(rng.random(T), audio, fps)
    assert static["r"] < 0.4


def test_sync_score_real_footage():
    """Real talking footage with its own audio is in sync (lag ~0, clearly above chance)."""
    s = E.sync_score(media("face_square_3.mp4"))
    assert abs(s["lag"]) <= 2 and s["r"] > 0.15


def test_fidelity_identical(tpl3):
    f = E.fidelity(tpl3.video_path, tpl3, max_frames=10)
    assert f["psnr_outside"] == float("inf") and f["face_fraction"] == 1.0


@pytest.mark.slow
def test_self_reenactment_runs():
    r = E.self_reenactment(media("face_square_3.mp4"), "default", device="cpu")
    assert r["frames"] >= 10
    assert -1 <= r["r_opening"] <= 1


# Measured in bench/quality.py on face_square_2, which the committed mouth model never saw
# (lipsync.corpus.HOLDOUT): opening r 0.43 for the default engine (0.36-0.37 before speaker
# adaptation recalibrated the generic predictions too), 0.14 for the static template.  The
# floor sits between the two, so a regression to a static or unrelated mouth fails here.
QUALITY_FLOOR_OPENING = 0.28


def test_quality_floor_on_a_held_out_clip():
    from lipsync import corpus
    from lipsync.mouth_model import MouthModel

    assert "face_square_2.mp4" in corpus.HOLDOUT
    assert "face_square_2.mp4" not in MouthModel.load().info["trained_on"]
    r = E.self_reenactment(media("face_square_2.mp4"), "default", device="cpu")
    assert r["opening"] >= QUALITY_FLOOR_OPENING, r
    assert r["psnr_outside"] > 38.0
