"""python manage.py renderworker [--device cuda:0|cpu] [--queues high,default,low] [--burst] [--name N]"""
from __future__ import annotations

import logging
import logging.handlers

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run a render worker: engine loaded once, one render at a time, queues in priority order."

    def add_arguments(self, parser):
        parser.add_argument("--device", default=settings.LIPSYNC_DEVICE or "", help="cuda:0, cpu, ... (default: auto)")
        parser.add_argument("--queues", default=",".join(settings.RENDER_QUEUES), help="comma-separated, best first")
        parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
        parser.add_argument("--name", default="", help="worker name (default: host-device-pid-random, new for every process)")
        parser.add_argument("--log-name", default="", help="log to var/log/worker-<log-name>.log (default: the worker name)")
        parser.add_argument("--no-preload", action="store_true", help="load the engine at the first render")
        parser.add_argument("--no-scheduler", action="store_true", help="do not run RQ's scheduler (retry backoff)")
        parser.add_argument("--workers", type=int, default=1,
                            help="CPU hosts: run this many worker processes, each with an equal share of the cores "
                                 "(0: RENDER_WORKERS, else one per two cores)")

    def handle(self, *args, device, queues, burst, name, log_name, no_preload, no_scheduler, workers=1, **options):
        from jobs.worker import RenderWorker, engine_get, render_worker_count
        from jobs.worker_registry import registrations_clean_stale, worker_name

        count = render_worker_count(workers or None)
        if count > 1:
            return self._run_many(count)

        device = device or None
        name = name or worker_name(device=device)
        self._log_to_file(log_name or name)
        queue_names = [q.strip() for q in queues.split(",") if q.strip()]
        queue_list = [django_rq.get_queue(q) for q in queue_names]
        registrations_clean_stale(queue_list[0].connection)
        worker = RenderWorker(queue_list, connection=queue_list[0].connection, name=name, device=device)
        if not no_preload:
            engine = engine_get(device)
            logging.getLogger("jobs.worker").info("worker %s: engine %s on %s ready", name, getattr(engine, "name", "?"),
                                                  getattr(engine, "device", device))
        worker.work(burst=burst, with_scheduler=not no_scheduler, logging_level=settings.LOG_LEVEL)

    def _run_many(self, count: int) -> None:
        """Run `count` single workers as child processes with their thread budgets; forward
        SIGTERM/SIGINT (each puts its render back) and return when all have exited.  A child
        that dies is not restarted here: runall and docker/launch_workers.py supervise."""
        import os
        import signal
        import subprocess
        import sys

        from jobs.worker import worker_thread_env

        # the same command line for each child, without --workers (and --name: one name
        # cannot serve several processes)
        argv, skip = [], False
        for arg in sys.argv:
            if skip:
                skip = False
            elif arg in ("--workers", "--name"):
                skip = True
            elif not arg.startswith(("--workers=", "--name=")):
                argv.append(arg)
        env = {**os.environ, **worker_thread_env(count)}
        procs = [subprocess.Popen([sys.executable, *argv, "--workers", "1"], env=env) for _ in range(count)]
        self.stdout.write(f"{count} render workers, {env['LIPSYNC_THREADS']} CPU threads each")

        def forward(sig, _frame):
            for p in procs:
                if p.poll() is None:
                    p.send_signal(sig)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(max(abs(c) for c in codes))

    @staticmethod
    def _log_to_file(name: str) -> None:
        settings.LOG_DIR.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        handler = logging.handlers.WatchedFileHandler(settings.LOG_DIR / f"worker-{safe}.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger("rq.worker").addHandler(handler) if not logging.getLogger("rq.worker").propagate else None
