"""Websocket progress (Channels, real Redis channel layer) and file serving (Range, nginx)."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.urls import reverse

from jobs import services, worker
from jobs.files import parse_range

pytestmark = pytest.mark.django_db(transaction=True)


def _ws(job_id, user=None):
    from config.asgi import application

    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers=headers)


@pytest.mark.slow
def test_progress_reaches_the_socket_and_others_are_refused(cast, make_template, make_job, redis_conn):
    job = make_job([make_template("face_square_3.mp4")])
    render = job.renders.get()

    async def scenario():
        for stranger in (cast.charlie, None):
            other = await sync_to_async(_ws)(job.pk, stranger)
            connected, code = await other.connect()
            assert (connected, code) == (False, 4404)
        comm = await sync_to_async(_ws)(job.pk, cast.alice)
        connected, _ = await comm.connect()
        assert connected
        snapshot = [await comm.receive_json_from(timeout=5) for _ in range(2)]
        assert snapshot[0]["type"] == "render" and snapshot[0]["id"] == str(render.pk) and snapshot[0]["status"] == "queued"
        assert snapshot[1]["type"] == "job" and snapshot[1]["snapshot"]

        def execute():
            try:
                return services.render_execute(render_id=render.pk, rq_job_id=render.rq_job_id,
                                               engine_provider=worker.engine_get, worker_name="test")
            finally:
                connections.close_all()  # this thread's own connection

        run = sync_to_async(execute, thread_sensitive=False)()
        task = asyncio.ensure_future(run)
        events = []
        while True:
            event = await comm.receive_json_from(timeout=120)
            events.append(event)
            if event["type"] == "render" and event["final"]:
                break
        assert await task == "done"
        stages = [e["status"] for e in events if e["type"] == "render"]
        assert "rendering" in stages and stages[-1] == "done"
        progress_values = [e["progress"] for e in events if e["type"] == "render"]
        assert progress_values == sorted(progress_values)  # bars never go backwards
        assert events[-1]["video_url"] == reverse("render_video", args=[render.pk])
        await comm.disconnect()

        # A late visitor gets the final state in the snapshot.
        late = await sync_to_async(_ws)(job.pk, cast.vera)
        assert (await late.connect())[0]
        first = await late.receive_json_from(timeout=5)
        assert first["status"] == "done" and first["final"]
        await late.disconnect()

    asyncio.run(scenario())


def test_range_parsing():
    assert parse_range("", 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-1000", 100) == (0, 99)
    assert parse_range("bytes=50-1000", 100) == (50, 99)
    assert parse_range("bytes=100-", 100) == "unsatisfiable"
    assert parse_range("bytes=-0", 100) == "unsatisfiable"
    assert parse_range("bytes=5-2", 100) is None
    assert parse_range("bytes=0-1,5-6", 100) is None
    assert parse_range("items=0-1", 100) is None


def _done_render(cast, settings, tmp_path):
    """A finished render whose output is a known byte pattern (no engine needed)."""
    from jobs.models import Job, Render

    job = Job.objects.create(team=cast.acme, created_by=cast.alice, audio="x.wav", status="done")
    render = Render.objects.create(job=job, team=cast.acme, template_name="Anna", status="done",
                                   output=f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/out.mp4")
    path = settings.MEDIA_ROOT / render.output.name
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * 40)  # 10240 bytes
    return render, path.read_bytes()


@pytest.mark.parametrize("header, status, expected, content_range", [
    ("bytes=0-99", 206, slice(0, 100), "bytes 0-99/10240"),
    ("bytes=10000-", 206, slice(10000, None), "bytes 10000-10239/10240"),
    ("bytes=-240", 206, slice(10000, None), "bytes 10000-10239/10240"),
    (None, 200, slice(None), None),
])
def test_render_video_ranges(client, cast, settings, tmp_path, header, status, expected, content_range):
    render, data = _done_render(cast, settings, tmp_path)
    client.force_login(cast.bob)
    extra = {"HTTP_RANGE": header} if header else {}
    response = client.get(reverse("render_video", args=[render.pk]), **extra)
    assert response.status_code == status
    body = b"".join(response.streaming_content)
    assert body == data[expected] and int(response["Content-Length"]) == len(body)
    assert response["Accept-Ranges"] == "bytes" and response["Content-Type"] == "video/mp4"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.get("Content-Range") == content_range


def test_unsatisfiable_range_is_416(client, cast, settings, tmp_path):
    render, _ = _done_render(cast, settings, tmp_path)
    client.force_login(cast.vera)
    response = client.get(reverse("render_video", args=[render.pk]), HTTP_RANGE="bytes=10240-")
    assert response.status_code == 416 and response["Content-Range"] == "bytes */10240"
    download = client.get(reverse("render_download", args=[render.pk]))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    client.force_login(cast.charlie)
    assert client.get(reverse("render_video", args=[render.pk]), HTTP_RANGE="bytes=0-1").status_code == 404


def test_nginx_mode_answers_with_x_accel_redirect(client, cast, settings, tmp_path):
    render, _ = _done_render(cast, settings, tmp_path)
    settings.MEDIA_SERVE = "nginx"
    client.force_login(cast.alice)
    response = client.get(reverse("render_video", args=[render.pk]))
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{render.output.name}"
    assert response["Content-Type"] == "video/mp4"
