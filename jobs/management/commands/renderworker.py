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

    def handle(self, *args, device, queues, burst, name, log_name, no_preload, no_scheduler, **options):
        from jobs.worker import RenderWorker, engine_get
        from jobs.worker_registry import registrations_clean_stale, worker_name

        device = device or None
        name = name or worker_name(device=device)
        self._log_to_file(log_name or name)
        queue_names = [q.strip() for q in queues.split(",") if q.strip()]
        queue_list = [django_rq.get_queue(q) for q in queue_names]
        registrations_clean_stale(queue_list[0].connection)
        worker = RenderWorker(queue_list, connection=queue_list[0].connection, name=name, device=device)
        if not no_preload:
            engine = engine_get(device)
            logging.getLogger("jobs.worker").info("worker %s: engine %s on %s ready", name, getattr(engine, "name", "?"), getattr(engine, "device", device))
        worker.work(burst=burst, with_scheduler=not no_scheduler, logging_level=settings.LOG_LEVEL)

    @staticmethod
    def _log_to_file(name: str) -> None:
        settings.LOG_DIR.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        handler = logging.handlers.WatchedFileHandler(settings.LOG_DIR / f"worker-{safe}.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger("rq.worker").addHandler(handler) if not logging.getLogger("rq.worker").propagate else None
