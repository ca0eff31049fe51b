"""The ping-pong frame spool: frames shown again come back bit-identical, in any order."""

import os
import tempfile

import numpy as np
import pytest
from lipsync_testutil import media

from lipsync import align
from lipsync.media import read_frames
from lipsync.spool import FrameSpool, LosslessFrames


def test_frame_spool_backwards():
    frames = (np.full((4, 4, 3), i, np.uint8) for i in range(10))
    s = FrameSpool(frames)
    order = [0, 1, 2, 3, 2, 1, 0, 1, 9, 5]
    assert [int(s.get(i)[0, 0, 0]) for i in order] == order
    with pytest.raises(IndexError):
        s.get(10)
    s.close()


def test_frame_spool_keeps_only_the_frames_shown_again():
    n = 10
    idx = align.template_indices(13, 25.0, n, 25.0)  # 3 frames past the end: 0..9, 8, 7, 6
    assert list(idx) == [*range(10), 8, 7, 6]
    keep = align.frames_shown_again(idx, n)
    assert list(np.flatnonzero(keep)) == [6, 7, 8]
    s = FrameSpool((np.full((4, 4, 3), i, np.uint8) for i in range(n)), keep=keep)
    assert [int(s.get(int(i))[0, 0, 0]) for i in idx] == list(idx)
    assert s.spooled == 3  # not the whole template
    with pytest.raises(IndexError):
        s.get(2)  # shown once, long gone
    assert int(s.get(9)[0, 0, 0]) == 9  # the newest frame pulled is always at hand
    s.close()


def test_frames_shown_again_ignores_back_to_back_repeats():
    # output at twice the template's rate: every frame twice in a row, nothing to keep
    assert not align.frames_shown_again(align.template_indices(19, 50.0, 10, 25.0), 10).any()
    # a full bounce and back: every frame but the two ends is shown again
    idx = align.template_indices(25, 25.0, 10, 25.0)
    assert list(np.flatnonzero(align.frames_shown_again(idx, 10))) == list(range(0, 9))


def test_lossless_spool_gives_real_1080p_frames_back_bit_identical_in_reverse_and_smaller():
    frames = [f for _, f in zip(range(6), read_frames(media("portrait_hevc_1080x1920.mp4")))]
    h, w = frames[0].shape[:2]
    spool = LosslessFrames(w, h, threads=2)
    slots = [spool.put(f) for f in frames]
    for slot in reversed(slots):  # backwards, as ping-pong plays it
        assert np.array_equal(spool.get(slot), frames[slot])
    raw = sum(f.nbytes for f in frames)
    assert spool.nbytes < raw / 2.5, (spool.nbytes, raw)  # compressed, not raw RGB
    spool.close()


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (591, 590)])
def test_lossless_spool_is_exact_on_noise_and_odd_sizes(shape):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(3)]
    spool = LosslessFrames(shape[1], shape[0])
    for f in frames:
        spool.put(f)
    assert all(np.array_equal(spool.get(i), frames[i]) for i in (2, 0, 1))
    with pytest.raises(ValueError):
        spool.put(np.zeros((shape[0] + 1, shape[1], 3), np.uint8))
    spool.close()


def test_spool_leaves_no_file_behind(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s = FrameSpool(np.full((8, 8, 3), i, np.uint8) for i in range(5))
    assert int(s.get(4)[0, 0, 0]) == 4 and int(s.get(0)[0, 0, 0]) == 0
    assert s.spooled == 5 and s.spool_bytes > 0
    assert os.listdir(tmp_path) == []  # unlinked from creation
    s.close()


def test_spool_keeps_frames_raw_up_to_its_budget_then_compresses():
    frames = [f for _, f in zip(range(6), read_frames(media("portrait_hevc_1080x1920.mp4")))]
    s = FrameSpool(iter(frames), raw_bytes=2 * frames[0].nbytes)
    assert np.array_equal(s.get(5), frames[5])
    assert s.spooled == 6 and s.compressed == 4  # two raw, the rest past the budget
    for i in reversed(range(6)):
        assert np.array_equal(s.get(i), frames[i]), i
    raw = sum(f.nbytes for f in frames)
    assert s.spool_bytes < 0.6 * raw
    s.close()
