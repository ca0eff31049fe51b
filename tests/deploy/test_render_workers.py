"""CPU hosts run several render workers, each with an equal share of the cores."""
from __future__ import annotations

import os

from jobs.worker import render_worker_count, worker_thread_env


def test_worker_count_default_follows_the_cores(settings, monkeypatch):
    settings.RENDER_WORKERS = 0
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert render_worker_count() == 8
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert render_worker_count() == 1
    settings.RENDER_WORKERS = 3
    assert render_worker_count() == 3
    assert render_worker_count(5) == 5


def test_thread_budgets_do_not_oversubscribe(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    env = worker_thread_env(8)
    assert env["LIPSYNC_THREADS"] == env["OMP_NUM_THREADS"] == "2"
    assert int(worker_thread_env(3)["LIPSYNC_THREADS"]) * 3 <= 16
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert worker_thread_env(4)["LIPSYNC_THREADS"] == "1"   # never 0


def test_engine_keeps_to_its_thread_budget(monkeypatch, tmp_path):
    """With LIPSYNC_THREADS set, the encoder and OpenCV use that many threads."""
    import cv2

    from lipsync.constants import thread_budget
    from lipsync.engines import load_engine

    monkeypatch.setenv("LIPSYNC_THREADS", "1")
    assert thread_budget() == 1
    before = cv2.getNumThreads()
    try:
        load_engine("default", device="cpu")
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_plan_threads_follow_the_budget(monkeypatch):
    """One geometry thread per two cores of a render's budget, at least one, at most four."""
    from lipsync.engines.base import plan_threads

    for budget, threads in (("1", 1), ("2", 1), ("3", 1), ("4", 2), ("8", 4), ("32", 4)):
        monkeypatch.setenv("LIPSYNC_THREADS", budget)
        assert plan_threads() == threads, budget
    monkeypatch.setenv("LIPSYNC_THREADS", "0")                 # no budget: this host's cores
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert plan_threads() == 3
