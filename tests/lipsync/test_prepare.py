import os
import time

import numpy as np
from lipsync_testutil import media

from lipsync import landmarks as L
from lipsync.prepare import PreparedTemplate, cache_path, prepare_template


def test_prepared_template(tpl3):
    assert tpl3.n_frames == 125 and tpl3.fps == 25.0
    assert tpl3.landmarks.shape == (125, 478, 2)
    assert tpl3.has_face.all()
    assert 0.3 < tpl3.median_width < 1.5
    assert tpl3.opening.max() > 0.1 and tpl3.opening.min() < 0.05
    # the mouth index: every frame of a short template, with its shape and a patch
    index = tpl3.mouth_index
    assert len(index) == 125 and index.patches.shape[0] == 125
    assert index.coeffs.shape == (125, 10) and index.shapes.shape == (125, 53, 2)
    assert tpl3.shape_mean.shape == (53, 2)
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
    np.testing.assert_array_equal(b.mouth_index.patches, a.mouth_index.patches)
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


def test_inconsistent_cache_is_not_trusted(tmp_path):
    """A well-formed cache whose arrays do not match the video (3 frames for a 5 s clip) is
    prepared again instead of looping 3 frames."""
    import json

    video = tmp_path / "t.mp4"
    os.symlink(media("face_square_3.mp4"), video)
    a = prepare_template(video, cache_dir=tmp_path)
    path = cache_path(video, tmp_path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["n_frames"] = 3
    arrays["meta"] = np.array(json.dumps(meta))
    for k in ("landmarks", "has_face", "opening", "width", "iod"):
        arrays[k] = arrays[k][:3]
    np.savez_compressed(path, **arrays)
    from lipsync.prepare import _try_load

    assert _try_load(path, video) is None
    b = prepare_template(video, cache_dir=tmp_path)
    assert b.n_frames == a.n_frames == 125
