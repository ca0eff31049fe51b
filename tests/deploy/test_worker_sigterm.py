"""Graceful worker shutdown, for real: `manage.py renderworker` as a child process on the real
Redis and database renders a real job on real media; SIGTERM arrives mid-render. The process
must exit cleanly and the render must end re-queued (or finished), never stuck active."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    """The test database the test process uses, as a URL for the child process."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _upload(path: Path, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type=content_type)


def test_sigterm_mid_render_requeues_and_exits_cleanly(cast, media_dir, redis_conn, tmp_path):
    from jobs import services
    from jobs.models import Render

    template = services.template_upload(team=cast.acme, user=cast.alice,
                                        uploaded_file=_upload(media_dir / "face_square_1.mp4", "video/mp4"))
    job = services.job_create(team=cast.acme, user=cast.alice, template_ids=[template.pk],
                              audio_file=_upload(media_dir / "speech_en_1.wav", "audio/wav"))
    render = job.renders.get()
    render.refresh_from_db()
    assert render.enqueued_at is not None and render.rq_job_id, "job_create did not hand the render to RQ"
    first_rq_job = render.rq_job_id

    env = {**os.environ, "DATABASE_URL": _database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "renderworker", "--device", "cpu", "--queues", "high,default,low",
         "--name", "sigterm-test", "--no-scheduler"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            render.refresh_from_db()
            if render.status == Render.Status.RENDERING and render.progress > 0.15 or render.is_final:
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert render.status == Render.Status.RENDERING, f"never saw it rendering: {render.status}\n{log.read_text()[-3000:]}"

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
        output = log.read_text()
        assert code == 0, output[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    render.refresh_from_db()
    assert render.status not in Render.ACTIVE, f"render stuck in {render.status}"
    print(f"after SIGTERM: render {render.status}; worker log tail:\n{output[-1500:]}")
    if render.status == Render.Status.DONE:  # it finished inside the grace time: fine too
        assert render.output and Path(render.output.path).exists()
        return
    assert render.status == Render.Status.QUEUED, render.status
    assert render.attempts == 0, "a shutdown must not use up one of the render's attempts"
    # Dispatch already put it back on a queue under a fresh RQ job id, for the next worker.
    assert render.enqueued_at is not None and render.rq_job_id and render.rq_job_id != first_rq_job
    from rq.job import Job as RQJob

    assert RQJob.fetch(render.rq_job_id, connection=redis_conn).get_status() == "queued"
    leftovers = list((Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}/jobs/{job.pk}/renders").glob("*.mp4*"))
    assert leftovers == [], f"partial output left behind: {leftovers}"
    assert "sigterm-test" not in [w.name for w in __import__("rq").Worker.all(connection=redis_conn)], \
        "the worker did not deregister on its way out"
