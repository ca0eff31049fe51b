"""Render logs shown to the team (issue 17, Low 9): a server-side failure used to write its whole
traceback, with server paths, into the log every viewer can open. Now the team's log says which
attempt failed, at which stage, and that it was a server problem; the traceback goes to the
server log only. The failure is a real one: the wav2lip engine given a corrupt checkpoint."""
from __future__ import annotations

import logging

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from jobs import services, worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_viewers_read_the_failure_without_traceback_or_server_paths(cast, make_template, make_job, settings, tmp_path,
                                                                   redis_conn, caplog):
    broken = tmp_path / "broken-generator.pth"
    broken.write_bytes(b"this is not a checkpoint" * 100)
    settings.LIPSYNC_ENGINE, settings.LIPSYNC_CHECKPOINT = "wav2lip", str(broken)
    settings.RENDER_MAX_ATTEMPTS = 1
    job = make_job([make_template("face_square_3.mp4")])
    render = job.renders.get()
    try:
        with caplog.at_level(logging.INFO):
            outcome = services.render_execute(render_id=render.pk, rq_job_id=render.rq_job_id or "", worker_name="privacy",
                                              engine_provider=lambda: worker.engine_get("cpu"))
    finally:
        worker._engines.pop("wav2lip@cpu", None)
    assert outcome == "failed"
    render.refresh_from_db()
    assert render.status == "failed" and render.error_code == "internal"

    viewer = Client()
    viewer.force_login(cast.vera)
    response = viewer.get(reverse("render_log", args=[render.pk]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    assert "attempt 1 failed" in text and "server problem" in text, text
    for leak in ("Traceback", 'File "', str(django_settings.BASE_DIR), str(settings.MEDIA_ROOT), "site-packages", str(broken)):
        assert leak not in text, f"{leak!r} in the team's log:\n{text}"
    # The operator still has the traceback.
    server = [r for r in caplog.records if r.name == "jobs.render" and r.exc_info]
    assert server and "attempt 1 failed" in server[0].getMessage()
    assert "Traceback" in logging.Formatter().format(server[0])
