"""`manage.py runall`: the whole platform on one machine, for `make run`.

Starts (or reuses) the embedded Redis, migrates, seeds the demo team, then runs as child
processes: the web server (uvicorn, HTTP + websockets), one render worker, one service worker
(template preparation, webhooks, maintenance jobs) and the maintenance loop. Each child logs to
var/log/<name>.log; their lines are echoed here with a prefix. Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import BaseCommand, call_command

from config import webserver


class Command(BaseCommand):
    help = "Set up and run web, workers and maintenance (embedded Redis unless REDIS_URL is set)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args, port: int, host: str, no_seed: bool, **opts):
        self.stdout.write(f"Redis: {'embedded (' + settings.REDIS_URL + ')' if settings.EMBEDDED_REDIS else settings.REDIS_URL}")
        self.stdout.write(f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} {settings.DATABASES['default'].get('NAME')}")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Migrations applied.")
        if not os.environ.get("SITE_URL"):
            settings.SITE_URL = f"http://{host}:{port}"
        if not no_seed:
            call_command("seed_demo")

        py = sys.executable
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        children = {
            "web": webserver.command(host, port),
            "worker": [py, manage, "renderworker", "--queues", ",".join(settings.RENDER_QUEUES), "--name", "render-1"],
            "service-worker": [py, manage, "renderworker", "--queues", "prep,webhooks,maintenance", "--name", "service-1", "--device", "cpu", "--no-preload"],
            "maintenance": [py, manage, "maintenance", "--loop", "300"],
        }
        procs: dict[str, subprocess.Popen] = {}

        def start(name: str) -> None:
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "SITE_URL": settings.SITE_URL}
            if "worker" not in name:  # workers write var/log/worker-<name>.log themselves
                env["LOG_FILE"] = str(settings.LOG_DIR / f"{name}.log")
            procs[name] = subprocess.Popen(children[name], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            threading.Thread(target=self._echo, args=(name, procs[name]), daemon=True).start()

        for name in children:
            start(name)

        self.stdout.write(self.style.SUCCESS(
            f"\nMouthpiece is running at http://{host}:{port}/\n"
            f"  logs: tail -f {settings.LOG_DIR}/*.log\n"
            f"  stop: Ctrl-C\n"))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            restarts: dict[str, float] = {}
            while not stopping:
                for name, p in list(procs.items()):
                    if p.poll() is None:
                        continue
                    if name == "web":
                        self.stderr.write(f"web exited with {p.returncode}; stopping everything")
                        stopping = True
                    elif time.monotonic() - restarts.get(name, 0.0) > 5:
                        # A worker that lost Redis or crashed is restarted, like a supervisor
                        # would; its render was re-queued or is recovered as abandoned.
                        self.stderr.write(f"{name} exited with {p.returncode}; restarting it")
                        restarts[name] = time.monotonic()
                        start(name)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for p in procs.values():
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
            self.stdout.write("Stopped.")

    def _echo(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.stdout.write(f"[{name}] {line.rstrip()}")
