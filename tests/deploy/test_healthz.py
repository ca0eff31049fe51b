"""/healthz against the real Redis and database: real rq workers started as processes, killed,
and registrations whose heartbeat went stale."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _rq_worker(queues: str, name: str) -> subprocess.Popen:
    """A real `rq worker` process on the queue Redis (no Django needed: it only listens)."""
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    return subprocess.Popen(
        [rq, "worker", "--url", settings.REDIS_QUEUE_URL, "--name", name, *queues.split(",")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def client(client, settings):
    """These checks read the full report: the client sends the HEALTHZ_TOKEN header (without
    it /healthz answers the status alone; tests/deploy/test_healthz_access.py)."""
    settings.HEALTHZ_TOKEN = "health-token-for-tests"
    client.defaults["HTTP_X_HEALTHZ_TOKEN"] = settings.HEALTHZ_TOKEN
    return client


@pytest.fixture
def stop_later():
    procs = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_no_worker_is_503_but_web_scope_is_200(client, redis_conn):
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"] == {**body["checks"]["workers"], "ok": False, "alive": 0, "required": 1}
    assert set(body["checks"]["queues"]["depths"]) == set(settings.RQ_QUEUES)

    web = client.get(reverse("healthz"), {"scope": "web"})
    assert web.status_code == 200
    assert set(web.json()["checks"]) == {"database", "redis"}
    assert web["Cache-Control"].startswith("max-age=0")


def test_queue_depths_count_waiting_and_failed_jobs(client, redis_conn):
    from rq import Queue
    from rq.job import Job

    low = Queue("low", connection=redis_conn)
    for _ in range(3):
        low.enqueue("os.getcwd")
    failed = Job.create("os.getcwd", connection=redis_conn, origin="default")
    failed.save()
    Queue("default", connection=redis_conn).failed_job_registry.add(failed, ttl=60)

    depths = client.get(reverse("healthz")).json()["checks"]["queues"]["depths"]
    assert depths["low"]["queued"] == 3
    assert depths["default"]["failed"] == 1
    assert depths["high"] == {"queued": 0, "started": 0, "failed": 0, "deferred": 0, "scheduled": 0}


@pytest.mark.slow
def test_live_worker_then_killed_worker(client, redis_conn, stop_later):
    """200 while a real worker process listens on the render queues; 503 and `dead` once it is
    killed with SIGKILL (no chance to deregister), long before its registration expires."""
    from rq import Worker

    proc = _rq_worker(",".join(settings.RENDER_QUEUES), "render-test-1")
    stop_later(proc)
    _wait_for(lambda: Worker.all(connection=redis_conn))

    healthy = client.get(reverse("healthz"))
    assert healthy.status_code == 200, healthy.json()
    assert healthy.json()["checks"]["workers"]["alive"] == 1

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [w.name for w in Worker.all(connection=redis_conn)] == ["render-test-1"]  # still registered
    after = client.get(reverse("healthz"))
    assert after.status_code == 503
    workers = after.json()["checks"]["workers"]
    assert workers["alive"] == 0 and workers["dead"] == 1


@pytest.mark.slow
def test_service_worker_alone_does_not_count_as_render_capacity(client, redis_conn, stop_later):
    from rq import Worker

    stop_later(_rq_worker("prep,webhooks,maintenance", "service-test-1"))
    _wait_for(lambda: Worker.all(connection=redis_conn))
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["other_alive"] == 1


def test_stale_heartbeat_is_not_alive(client, redis_conn, settings):
    """A worker on another host whose last heartbeat is older than HEALTH_WORKER_STALE_SECONDS."""
    from rq import Queue, Worker

    settings.HEALTH_WORKER_STALE_SECONDS = 120
    worker = Worker([Queue("default", connection=redis_conn)], connection=redis_conn, name="gpu-host-2.1")
    worker.register_birth()
    old = datetime.now(UTC) - timedelta(seconds=600)
    redis_conn.hset(worker.key, mapping={"last_heartbeat": old.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                                         "hostname": "gpu-host-2", "state": "idle"})

    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    workers = response.json()["checks"]["workers"]
    assert workers["stale"] == 1 and workers["alive"] == 0

    worker.heartbeat()  # a fresh beat brings it back
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["checks"]["workers"]["alive"] == 1


def test_busy_worker_gets_its_jobs_timeout_before_it_counts_as_stale(redis_conn, settings):
    from rq import Queue, Worker

    from config.health import worker_health

    settings.HEALTH_WORKER_STALE_SECONDS = 120
    queue = Queue("default", connection=redis_conn)
    job = queue.enqueue("os.getcwd", job_timeout=3600)
    worker = Worker([queue], connection=redis_conn, name="busy-1")
    worker.register_birth()
    worker.prepare_execution(job)  # what a worker does on picking the job up
    worker.set_state("busy")
    later = datetime.now(UTC) + timedelta(seconds=900)  # no beat for 15 min, job may run 1 h
    found = Worker.find_by_key(worker.key, connection=redis_conn)
    assert found.get_current_job().id == job.id
    assert worker_health(found, now=later)["health"] == "alive"
    assert worker_health(found, now=later + timedelta(seconds=3600))["health"] == "stale"


def test_redis_down_is_503_with_the_reason(client, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr("config.health._queue_connection",
                        lambda: redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5))
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False and "ConnectionError" in checks["redis"]["error"]
    assert checks["workers"] == {"ok": False, "error": "redis unavailable"}
    assert client.get(reverse("healthz"), {"scope": "web"}).status_code == 503
