"""Render worker names and stale registrations (issue 17, Medium 4): the worker used to be named
`render-1` by runall, and after a SIGKILL its RQ registration lived 420 s, so every restart
failed with "There exists an active worker named 'render-1'" (91 restarts, 7.7 minutes without a
renderer). Real `manage.py renderworker` processes on this test's Redis."""
from __future__ import annotations

import signal
import time

import pytest
from rq import Worker
from testutil import stop_process, wait_for, worker_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _names(conn) -> set[str]:
    return {w.name for w in Worker.all(connection=conn)}


def test_a_worker_restarted_under_the_same_name_after_kill_9_starts_at_once(settings, redis_conn):
    """docker/launch_workers.py restarts a crashed worker with the same --name: the dead one's
    registration (same host, its pid gone) is dropped instead of blocking the new process."""
    first = worker_process(settings, "same-name", "--device", "cpu", "--no-preload")
    try:
        wait_for(lambda: "same-name" in _names(redis_conn), 60, "the first worker to register")
        first_pid = next(w.pid for w in Worker.all(connection=redis_conn) if w.name == "same-name")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert "same-name" in _names(redis_conn)  # RQ still believes in it (TTL 420 s)
        started = time.monotonic()
        second = worker_process(settings, "same-name", "--device", "cpu", "--no-preload")
        try:
            wait_for(lambda: any(w.name == "same-name" and w.pid != first_pid for w in Worker.all(connection=redis_conn)),
                     30, "the restarted worker to register")
            assert second.poll() is None, "the restarted worker exited"
            assert time.monotonic() - started < 15
        finally:
            stop_process(second, signal.SIGTERM)
    finally:
        stop_process(first)


def test_default_names_are_unique_per_process():
    from jobs.worker_registry import worker_name

    a, b = worker_name(device="cuda:0"), worker_name(device="cuda:0")
    assert a != b and "cuda0" in a
