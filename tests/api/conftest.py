"""Fixtures for the API, sharing and webhook tests: finished jobs made from real media without
running the engine, API keys, a real local HTTP receiver and an RQ burst worker."""
from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _webhook_signals():
    from jobs.webhooks import connect_signals

    connect_signals()


@pytest.fixture
def api_key(cast):
    """(ApiKey, plaintext) for acme."""
    from accounts.api_keys import apikey_create

    return apikey_create(team=cast.acme, name="tests", created_by=cast.alice)


@pytest.fixture
def globex_key(cast):
    from accounts.api_keys import apikey_create

    return apikey_create(team=cast.globex, name="globex tests", created_by=cast.charlie)


@pytest.fixture
def make_finished_job(settings, media_dir):
    """make_finished_job(team, n=2, title=...) -> Job with n done renders whose outputs are copies
    of a real video under MEDIA_ROOT (and a template with a real poster)."""
    from django.utils import timezone

    from jobs.models import Job, Render, Template

    def make(team, *, n: int = 2, title: str = "Launch video", statuses=None):
        media_root = Path(settings.MEDIA_ROOT)
        job = Job.objects.create(team=team, title=title, status=Job.Status.DONE, audio="x/audio.wav",
                                 audio_filename="speech.wav", audio_duration=2.0, finished=timezone.now())
        for i in range(n):
            status = (statuses or ["done"] * n)[i]
            template = Template(team=team, name=f"Presenter {i + 1}")
            template.file.name = f"teams/{team.pk}/templates/{template.id}/source.mp4"
            template.poster.name = f"teams/{team.pk}/templates/{template.id}/poster.jpg"
            (media_root / template.poster.name).parent.mkdir(parents=True, exist_ok=True)
            (media_root / template.poster.name).write_bytes(b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9")
            template.save()
            r = Render(job=job, team=team, template=template, template_name=template.name, status=status)
            if status == "done":
                r.output.name = f"teams/{team.pk}/jobs/{job.id}/renders/{uuid.uuid4()}.mp4"
                out = media_root / r.output.name
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(media_dir / f"face_square_{i % 3 + 1}.mp4", out)
                r.output_size_bytes = out.stat().st_size
                r.progress, r.finished = 1.0, timezone.now()
            r.save()
        return job

    return make


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers with the scripted status codes in turn
    (the last one repeats) and records every request."""

    def __init__(self, statuses=(200,), delay: float = 0.0):
        self.statuses, self.delay, self.requests = list(statuses), delay, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
                code = receiver.statuses[index]
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/mouthpiece?x=1"

    def json(self, i: int) -> dict:
        return json.loads(self.requests[i]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,), delay: float = 0.0) -> Receiver:
        r = Receiver(statuses, delay)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def run_webhooks(redis_conn):
    """Run the "webhooks" queue to empty with an in-process burst worker; returns the queue."""
    import django_rq
    from rq import SimpleWorker

    def run():
        queue = django_rq.get_queue("webhooks")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        return queue

    return run
