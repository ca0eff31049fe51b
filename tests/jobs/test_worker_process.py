"""A real `manage.py renderworker` process killed with -9 mid-render: the render is noticed as
abandoned (stale heartbeat) and finished by another worker."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from testutil import probe, wait_for, worker_process

from jobs import services
from jobs.models import Render

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_kill_9_mid_render_recovers(cast, make_template, make_job, run_worker, settings, media_dir, redis_conn):
    settings.RENDER_ABANDONED_AFTER = 3.0
    job = make_job([make_template("face_square_1.mp4")], audio=media_dir / "speech_en_1.wav")
    render = job.renders.get()
    proc = worker_process(settings, "doomed", burst=True)
    try:
        wait_for(lambda: Render.objects.filter(pk=render.pk, status="rendering").exists(), 120, "rendering")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = time.monotonic()
    render.refresh_from_db()
    assert render.status == "rendering" and render.worker_name == "doomed" and render.attempts == 1
    assert services.renders_recover_abandoned() == []  # the heartbeat is still fresh

    recovered = wait_for(services.renders_recover_abandoned, 60, "abandoned render to be noticed")
    assert recovered == [str(render.pk)] and time.monotonic() - killed_at < 60
    render.refresh_from_db()
    assert render.status == "queued" and render.rq_job_id and render.error_code == "abandoned"

    run_worker()
    render.refresh_from_db()
    assert render.status == "done" and render.attempts == 2
    assert probe(render.output.path).duration == pytest.approx(job.audio_duration, abs=0.2)
    assert not [p for p in Path(render.output.path).parent.iterdir() if p.suffix not in (".mp4", ".log")]


def test_sigterm_puts_the_running_render_back(cast, make_template, make_job, settings, media_dir, run_worker, redis_conn):
    """Warm shutdown: the render stops at its next frame batch and goes back to the queue
    without using up an attempt; the worker process exits cleanly."""
    job = make_job([make_template("face_square_1.mp4")], audio=media_dir / "speech_en_1.wav")
    render = job.renders.get()
    proc = worker_process(settings, "leaving", burst=True)
    try:
        wait_for(lambda: Render.objects.filter(pk=render.pk, status="rendering").exists(), 120, "rendering")
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    render.refresh_from_db()
    assert render.status == "queued" and render.attempts == 0 and render.rq_job_id
    assert not render.output
    log_file = settings.LOG_DIR / "worker-leaving.log"
    assert log_file.is_file() and "warm shut down" in log_file.read_text()
    run_worker()
    render.refresh_from_db()
    assert render.status == "done" and render.attempts == 1
