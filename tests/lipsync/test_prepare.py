import os
import time

import numpy as np

from lipsync import landmarks as L
from lipsync.prepare import PreparedTemplate, cache_path, prepare_template

from lipsync_testutil import media


def test_prepared_template(tpl3):
    assert tpl3.n_frames == 125 and tpl3.fps == 25.0
    assert tpl3.landmarks.shape == (125, 478, 2)
    assert tpl3.has_face.all()
    assert 0.3 < tpl3.median_width < 1.5
    assert tpl3.opening.max() > 0.1 and tpl3.opening.min() < 0.05
    assert tpl3.atlas is not None and tpl3.atlas.opening > 0.1
    assert tpl3.atlas.inner.shape == (22, 2)
    # landmarks are in display pixels
    assert 0 < tpl3.landmarks[..., 0].min() and tpl3.landmarks[..., 0].max() < 590


def test_cache_hit_and_invalidation(tmp_path):
    video = tmp_path / "t.mp4"
    os.symlink(media("face_square_3.mp4"), video)
    cdir = tmp_path / "cache"
    t0 = time.perf_counter()
    a = prepare_template(video, cache_dir=cdir)
    first = time.perf_counter() - t0
    assert cache_path(video, cdir).exists()
    t0 = time.perf_counter()
    b = prepare_template(video, cache_dir=cdir)
    assert time.perf_counter() - t0 < min(0.5, first / 3)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert b.atlas.image.shape == a.atlas.image.shape
    assert not [f for f in os.listdir(cdir) if f.endswith(".tmp.npz")]


def test_cache_version_mismatch_recomputes(tmp_path, monkeypatch):
    import lipsync.prepare as P

    video = tmp_path / "t.mp4"
    os.symlink(media("face_square_3.mp4"), video)
    a = prepare_template(video, cache_dir=tmp_path)
    monkeypatch.setattr(P, "VERSION", "other")
    assert P._try_load(cache_path(video, tmp_path), video) is None
    b = prepare_template(video, cache_dir=tmp_path)
    assert b.timings.get("prepare", 0) > 0 and isinstance(a, PreparedTemplate)


def test_lower_face_mask_geometry(tpl3):
    lm = tpl3.landmarks[0]
    m = L.lower_face_mask(lm, (590, 590))
    mouth = lm[13].round().astype(int)
    eye = lm[33].round().astype(int)
    assert m[mouth[1], mouth[0]] and not m[eye[1], eye[0]]
