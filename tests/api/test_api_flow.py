"""End to end through the API: upload templates from ../shared/media, create a job with a real
audio upload, run a real RQ burst worker with the real engine, poll to done, download the zip and
a video (with Range), and receive the signed webhooks on a real local HTTP server."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from testutil import cut_audio

from jobs.webhooks import verify_signature


@pytest.fixture
def short_speech(media_dir, tmp_path) -> Path:
    return cut_audio(media_dir / "speech_en_1.wav", tmp_path / "speech_2s.wav", 2.0)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_api_flow_end_to_end(cast, api_key, media_dir, short_speech, receiver, redis_conn, settings):
    import django_rq
    from rq import SimpleWorker

    from jobs.worker import RenderWorker

    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    cast.acme.refresh_from_db()
    from jobs.webhooks import webhook_secret_rotate

    secret = webhook_secret_rotate(team=cast.acme)
    rx = receiver([200])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")

    # Templates: multipart upload, probed at once, prepared on the "prep" queue.
    template_ids = []
    for name in ("face_square_3.mp4", "face_square_2.mp4"):
        with open(media_dir / name, "rb") as f:
            response = client.post(reverse("api_template_list"), {"file": f, "name": name[:-4], "tags": ["demo"]},
                                   format="multipart")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["width"] > 0 and body["duration"] > 4 and body["prep_status"] == "pending"
        template_ids.append(body["id"])
    assert client.get(reverse("api_template_list")).json()["count"] == 2

    # A bad upload is a clean 400 with the service's code.
    bad = client.post(reverse("api_template_list"), {"file": io.BytesIO(b"not a video at all" * 100)}, format="multipart")
    assert bad.status_code == 400 and bad.json()["error"]["code"] in ("undecodable", "extension", "invalid")

    with open(short_speech, "rb") as audio:
        response = client.post(reverse("api_job_list"), {
            "audio": audio, "template_ids": ",".join(template_ids), "title": "API batch", "priority": "high",
            "webhook_url": rx.url}, format="multipart")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "queued" and len(job["renders"]) == 2 and job["webhook_url"] == rx.url

    queues = [django_rq.get_queue(q) for q in ("prep", "high", "default", "low")]
    RenderWorker(queues, connection=queues[0].connection, watchdog=False).work(burst=True, with_scheduler=True)

    # Poll (the burst worker has finished, so one or two polls suffice).
    detail = client.get(reverse("api_job_detail", args=[job["id"]])).json()
    assert detail["status"] == "done", detail
    assert detail["progress"] == 1.0 and detail["render_counts"] == {"done": 2}
    for r in detail["renders"]:
        assert r["status"] == "done" and r["download_url"] and r["output_duration"] == pytest.approx(2.0, abs=0.3)

    render = detail["renders"][0]
    assert client.get(reverse("api_render_detail", args=[render["id"]])).json()["quality"]["face_fraction"] > 0.5
    part = client.get(render["download_url"], HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100
    log = client.get(reverse("api_render_log", args=[render["id"]]))
    assert log.status_code == 200

    zipped = client.get(reverse("api_job_zip", args=[job["id"]]))
    assert zipped.status_code == 200 and zipped["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content)))
    names = sorted(archive.namelist())
    assert names == ["face_square_2.mp4", "face_square_3.mp4"]
    assert archive.read(names[0])[4:8] == b"ftyp"

    usage = client.get(reverse("api_usage")).json()
    assert usage["render_minutes_used"] > 0 and usage["storage_bytes_used"] > 0

    # Webhooks: two render.done and one job.finished, all signed with the team's secret.
    webhooks_queue = django_rq.get_queue("webhooks")
    SimpleWorker([webhooks_queue], connection=webhooks_queue.connection).work(burst=True)
    events = sorted(rx.json(i)["type"] for i in range(len(rx.requests)))
    assert events == ["job.finished", "render.done", "render.done"]
    for req in rx.requests:
        h = req["headers"]
        assert verify_signature(secret, h["Mouthpiece-Timestamp"], req["body"], h["Mouthpiece-Signature"])

    # Cancel of a finished job changes nothing; retry has nothing to do.
    assert client.post(reverse("api_job_cancel", args=[job["id"]])).json()["status"] == "done"
    assert client.post(reverse("api_job_retry", args=[job["id"]])).status_code == 409

    # Delete a template: its renders keep their videos.
    assert client.delete(reverse("api_template_detail", args=[template_ids[0]])).status_code == 204
    assert client.get(reverse("api_template_detail", args=[template_ids[0]])).status_code == 404
    assert client.get(render["download_url"]).status_code == 200


def test_job_list_queries_do_not_grow_with_the_page(cast, api_key, make_finished_job):
    """The job list costs the same number of queries for 2 jobs as for 8 (no query per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/v1/jobs/")
        assert response.status_code == 200
        return len(ctx.captured_queries), response.json()

    for _ in range(2):
        make_finished_job(cast.acme, n=2)
    few, body = count()
    assert all(j["render_counts"] == {"done": 2} and j["progress"] == 1.0 for j in body["results"])
    for _ in range(6):
        make_finished_job(cast.acme, n=2)
    many, body = count()
    assert len(body["results"]) == 8 and many <= few, (few, many)
