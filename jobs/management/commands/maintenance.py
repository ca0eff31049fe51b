"""`manage.py maintenance [--dry-run] [--loop SECONDS] [--enqueue]`: retention purge, orphan and
temp-file cleanup, abandoned-render recovery. The scheduler runs it with --loop 300."""
from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from jobs.maintenance import maintenance_enqueue, maintenance_run


class Command(BaseCommand):
    help = "Delete expired render outputs, orphan and temp files; recover abandoned renders."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be deleted; delete nothing.")
        parser.add_argument("--loop", type=int, metavar="SECONDS", default=0,
                            help="Run again every SECONDS until stopped (the scheduler service).")
        parser.add_argument("--enqueue", action="store_true", help="Put one run on the \"maintenance\" RQ queue instead.")

    def handle(self, *args, dry_run=False, loop=0, enqueue=False, verbosity=1, **options):
        if enqueue:
            job = maintenance_enqueue(dry_run=dry_run)
            self.stdout.write(f"enqueued {job.id} on the maintenance queue")
            return
        stopping = []
        if loop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopping.append(True))
        while True:
            if loop:
                close_old_connections()  # a long-lived loop must not hold a dead connection
            try:
                report = maintenance_run(dry_run=dry_run)
            except Exception as exc:  # the loop outlives one bad run (database restart, ...)
                if not loop:
                    raise
                self.stderr.write(f"maintenance failed: {exc!r}")
            else:
                self._print(report, verbosity)
            if not loop:
                return
            deadline = time.monotonic() + loop
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(1.0, deadline - time.monotonic()))
            if stopping:
                return

    def _print(self, report, verbosity):
        verb = "would delete" if report.dry_run else "deleted"
        if verbosity >= 1:
            for rid in report.expired_renders:
                self.stdout.write(f"{verb} expired output of render {rid}")
            for path in report.orphan_files:
                self.stdout.write(f"{verb} orphan {path}")
            for path in report.temp_files:
                self.stdout.write(f"{verb} temp {path}")
        self.stdout.write(report.summary())
