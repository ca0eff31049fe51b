import numpy as np

from lipsync import align


def test_ping_pong():
    assert align.ping_pong(np.arange(12), 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert align.ping_pong(np.arange(3), 1).tolist() == [0, 0, 0]


def test_template_indices_same_rate_and_cut():
    idx = align.template_indices(50, 25, 125, 25)
    assert idx.tolist() == list(range(50))
    assert align.is_monotonic(idx)


def test_template_indices_loop_and_rate_change():
    idx = align.template_indices(100, 30, 25, 25)
    assert idx.max() == 24 and not align.is_monotonic(idx)
    assert np.abs(np.diff(idx)).max() <= 1  # no jump cut, ever


def test_n_output_frames():
    assert align.n_output_frames(2.0, 25) == 50
    assert align.n_output_frames(0.001, 25) == 1
    assert align.n_output_frames(6.1, 22.13) == 135


def test_resample_and_smooth():
    x = np.arange(10, dtype=np.float32)
    y = align.resample(x, 10, 20, 20)
    assert y[2] == 1.0 and len(y) == 20
    s = align.smooth_series(np.r_[np.zeros(10), np.ones(10)], 1.0)
    assert 0 < s[9] < 1 and np.all(np.diff(s) >= 0)
