"""Fixtures for the API, sharing and webhook tests: finished jobs made from real media without
running the engine, API keys, a real local HTTP receiver and an RQ burst worker."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
