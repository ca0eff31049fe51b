"""One temp-file rule (lipsync.atomic) and the pruning of a worker's MEDIA_CACHE_DIR by age and
size (config.storage.media_cache_prune)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from config.storage import media_cache_prune
from lipsync.atomic import atomic_path, is_temp_name, temp_path_for

HOUR = 3600.0


def _file(root: Path, name: str, size: int, age: float, now: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age, now - age))
    return path


def test_temp_names_follow_one_rule():
    tmp = temp_path_for("/a/b/render.mp4")
    assert tmp.parent == Path("/a/b") and is_temp_name(tmp.name) and tmp.name.startswith(".render.mp4.")
    assert not is_temp_name("render.mp4") and not is_temp_name("prep.npz") and not is_temp_name("a.tmpl")
    # names earlier versions used are still recognised after an upgrade
    assert is_temp_name(".part-k2j3h4") and is_temp_name(".tmp-xyz.npz") and is_temp_name(".out.ab12cd34.tmp.mp4")


def test_atomic_path_leaves_nothing_behind_when_the_write_fails(tmp_path):
    dest = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(dest) as tmp:
        tmp.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"] and dest.read_bytes() == b"whole"


def test_prune_removes_old_copies_and_temp_files_and_keeps_recent_ones(settings, tmp_path):
    settings.MEDIA_CACHE_DIR = tmp_path / "cache"
    settings.MEDIA_CACHE_MAX_AGE_SECONDS = 24 * HOUR
    settings.MAINTENANCE_MIN_AGE_SECONDS = HOUR
    now = time.time()
    root = settings.MEDIA_CACHE_DIR
    stale = _file(root, "ab/abcdef.mp4", 10, 30 * HOUR, now)
    used = _file(root, "cd/cdef01.mp4", 10, 2 * HOUR, now)
    abandoned = _file(root, f"ef/{temp_path_for('ef01.mp4').name}", 10, 2 * HOUR, now)
    writing = _file(root, f"work/{temp_path_for('out.mp4').name}", 10, 60, now)
    removed = media_cache_prune(now=now)
    assert sorted(removed) == sorted([str(stale), str(abandoned)])
    assert used.exists() and writing.exists() and not stale.exists() and not abandoned.exists()


def test_prune_keeps_the_folder_under_its_size_least_recently_used_first(settings, tmp_path):
    settings.MEDIA_CACHE_DIR = tmp_path / "cache"
    settings.MEDIA_CACHE_MAX_AGE_SECONDS = 1000 * HOUR
    settings.MEDIA_CACHE_MAX_BYTES = 250
    settings.MAINTENANCE_MIN_AGE_SECONDS = HOUR
    now = time.time()
    root = settings.MEDIA_CACHE_DIR
    oldest = _file(root, "a/1.mp4", 100, 50 * HOUR, now)
    older = _file(root, "a/2.mp4", 100, 40 * HOUR, now)
    recent = _file(root, "a/3.mp4", 100, 3 * HOUR, now)
    just_used = _file(root, "a/4.mp4", 100, 60, now)  # over the size, but a worker may be reading it
    assert media_cache_prune(now=now, dry_run=True) == [str(oldest), str(older)]
    assert oldest.exists()  # dry run
    assert media_cache_prune(now=now) == [str(oldest), str(older)]
    assert recent.exists() and just_used.exists()


def test_a_worker_prunes_after_a_job_at_most_once_per_interval(settings, tmp_path):
    from jobs import worker

    settings.MEDIA_CACHE_DIR = tmp_path / "cache"
    settings.MEDIA_CACHE_MAX_AGE_SECONDS = 24 * HOUR
    settings.MAINTENANCE_MIN_AGE_SECONDS = HOUR
    settings.MEDIA_CACHE_PRUNE_INTERVAL_SECONDS = 300
    now = time.time()
    worker._last_prune["at"] = float("-inf")
    first = _file(settings.MEDIA_CACHE_DIR, "a/1.mp4", 10, 30 * HOUR, now)
    worker._media_cache_prune(now=now)
    assert not first.exists()
    second = _file(settings.MEDIA_CACHE_DIR, "a/2.mp4", 10, 30 * HOUR, now)
    worker._media_cache_prune(now=now + 299)          # the next job, soon after: no walk
    assert second.exists()
    worker._media_cache_prune(now=now + 301)
    assert not second.exists()
