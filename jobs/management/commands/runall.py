"""`manage.py runall`: the whole platform on one machine, for `make run`.

Starts (or reuses) the embedded Redis, migrates, seeds the demo team, then runs as child
processes: the web server (uvicorn, HTTP + websockets), one render worker, one service worker
(template preparation, webhooks, maintenance jobs) and the maintenance loop. Each child logs to
var/log/<name>.log; their lines are echoed here with a prefix. Ctrl-C stops everything.

It supervises them like a process manager would: a child that exits (the web process included)
is started again, at once the first time and then with a growing delay while it keeps failing;
each child runs in its own process group, which is killed with it, so nothing it forked (RQ's
scheduler) outlives it. Only this process starts the embedded Redis: the children are told not
to, and if the server dies this process starts it again before restarting anyone.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management import BaseCommand, call_command

from config import webserver

BACKOFF_FIRST = 0.5  # seconds before the first restart
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long starts again from BACKOFF_FIRST


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # consecutive exits that came before HEALTHY_AFTER
    due: float = 0.0  # monotonic time of the next start; 0 = running or not scheduled
    restarts: int = 0
    env: dict = field(default_factory=dict)  # added to the environment it starts with

    def backoff(self) -> float:
        return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, self.failures - 1))


def production_line(host: str, port: int) -> str:
    """The one command line that runs the same platform in production mode (no DEBUG, secure
    cookies, JSON logs, compressed static files), still on plain HTTP on this machine, and
    without the demo login (its password is public)."""
    return (f"DJANGO_ENV=production SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') "
            f"ALLOWED_HOSTS={host} SECURE_SSL_REDIRECT=false "
            f"sh -c '.venv/bin/python manage.py collectstatic --noinput -v0 && "
            f".venv/bin/python manage.py runall --host {host} --port {port} --no-seed'")


class Command(BaseCommand):
    help = "Set up and run web, workers and maintenance (embedded Redis unless REDIS_URL is set)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-seed", action="store_true")
        parser.add_argument("--workers", type=int, default=None,
                            help="render workers on this host (default: RENDER_WORKERS, else one per two CPU cores)")

    def handle(self, *args, port: int, host: str, no_seed: bool, workers: int | None = None, **opts):
        from jobs.worker import render_worker_count, worker_thread_env

        self.stdout.write(f"Redis: {'embedded (' + settings.REDIS_URL + ')' if settings.EMBEDDED_REDIS else settings.REDIS_URL}")
        database = settings.DATABASES["default"]
        self.stdout.write(f"Database: {database['ENGINE'].rsplit('.', 1)[-1]} {database.get('NAME')}")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Migrations applied.")
        if not os.environ.get("SITE_URL"):
            settings.SITE_URL = f"http://{host}:{port}"
        if not no_seed:
            call_command("seed_demo")

        py = sys.executable
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        # Workers get a fresh unique name per process (renderworker's default): a restarted
        # worker never waits for its SIGKILLed predecessor's registration to expire.
        n_workers = render_worker_count(workers)
        render_workers = [
            Child("worker" if k == 1 else f"worker-{k}",
                  [py, manage, "renderworker", "--queues", ",".join(settings.RENDER_QUEUES),
                   "--log-name", "render" if k == 1 else f"render-{k}"],
                  env=worker_thread_env(n_workers))
            for k in range(1, n_workers + 1)]
        self.children = {c.name: c for c in (
            Child("web", webserver.command(host, port)),
            *render_workers,
            Child("service-worker", [py, manage, "renderworker", "--queues", "prep,webhooks,maintenance", "--log-name", "service",
                                     "--device", "cpu", "--no-preload"]),
            Child("maintenance", [py, manage, "maintenance", "--loop", "300"]),
        )}
        for child in self.children.values():
            self._start(child)

        mode = "production" if settings.PRODUCTION else f"{settings.DJANGO_ENV}, DEBUG={settings.DEBUG}"
        self.stdout.write(self.style.SUCCESS(
            f"\nMouthpiece is running at http://{host}:{port}/ ({mode})\n"
            f"  render workers: {n_workers} ({worker_thread_env(n_workers)['LIPSYNC_THREADS']} CPU threads each)\n"
            f"  logs: tail -f {settings.LOG_DIR}/*.log\n"
            f"  stop: Ctrl-C\n"))
        if settings.DEBUG:
            self.stdout.write(
                "  DEBUG is on: this is for development on your own machine (error pages show code and settings).\n"
                f"  The same in production mode:\n    {production_line(host, port)}\n")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                self._supervise()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop_all()
            self.stdout.write("Stopped.")

    # --- supervision ---------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SITE_URL": settings.SITE_URL, "EMBEDDED_REDIS_START": "0",
               **child.env}
        if "worker" not in child.name:  # workers write var/log/worker-<name>.log themselves
            env["LOG_FILE"] = str(settings.LOG_DIR / f"{child.name}.log")
        child.proc = subprocess.Popen(child.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      bufsize=1, start_new_session=True)
        child.started, child.due = time.monotonic(), 0.0
        threading.Thread(target=self._echo, args=(child.name, child.proc), daemon=True).start()

    @staticmethod
    def _kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        """Signal the child's whole process group (what it forked, e.g. RQ's scheduler)."""
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _redis_up(self) -> bool:
        """Whether Redis answers; the embedded one is started again here when it died."""
        if settings.EMBEDDED_REDIS:
            from config import embedded_redis

            sock = embedded_redis.socket_path(settings.VAR_DIR)
            if embedded_redis.is_answering(sock):
                return True
            self.stderr.write("embedded Redis is not answering; starting it again")
            try:
                embedded_redis.ensure(settings.VAR_DIR)
            except Exception as e:  # noqa: BLE001 - retried on the next round
                self.stderr.write(f"embedded Redis did not start: {e}")
                return False
            return True
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if getattr(self, "_redis", None) is None:
            # One try per round: redis-py's default retries would stall supervision for seconds.
            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    def _supervise(self) -> None:
        now = time.monotonic()
        exited = [c for c in self.children.values() if c.proc is not None and c.proc.poll() is not None]
        for child in exited:
            code = child.proc.returncode
            self._kill_group(child.proc)  # orphans of the dead child
            child.failures = 1 if now - child.started >= HEALTHY_AFTER else child.failures + 1
            child.due = now + (BACKOFF_FIRST if child.failures == 1 else child.backoff())
            child.proc = None
            if "worker" in child.name:
                self.stale_registrations = True
            self.stderr.write(f"{child.name} exited with {code}; restarting it in {child.due - now:.1f} s")
        # Checked every round (a ping on a local socket): a dead embedded Redis is started
        # again at once, while the workers wait for it with short reconnection delays.
        if not self._redis_up():
            return  # every child needs Redis: restart them when it is back, not in a loop now
        if getattr(self, "stale_registrations", False):
            self.stale_registrations = False
            self._drop_registrations()
        for child in self.children.values():
            if child.proc is not None or not child.due:
                continue
            if now >= child.due:
                child.restarts += 1
                self._start(child)

    def _drop_registrations(self) -> None:
        """A dead worker's RQ registration outlives it by its TTL; drop it now (Redis is up)."""
        try:
            import django_rq

            from jobs.worker_registry import registrations_clean_stale

            registrations_clean_stale(django_rq.get_connection("default"))
        except Exception:  # noqa: BLE001 - Redis may be the reason it died; the next worker cleans up
            pass

    def _stop_all(self) -> None:
        running = [c.proc for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)  # workers put their render back and exit
        deadline = time.monotonic() + 30
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        for child in self.children.values():
            if child.proc is not None:
                self._kill_group(child.proc)

    def _echo(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.stdout.write(f"[{name}] {line.rstrip()}")
