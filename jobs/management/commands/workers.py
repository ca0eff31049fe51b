"""`manage.py workers [--json] [--check]`: every RQ worker registered in Redis, as /healthz sees it.

--check exits 1 unless a worker on this host is alive: the worker container's health check.
"""
from __future__ import annotations

import json
import socket

from django.core.management.base import BaseCommand, CommandError

from config.health import workers_report


class Command(BaseCommand):
    requires_system_checks = []  # an operator's probe must answer even while the site is misconfigured
    help = "List RQ workers: name, host, pid, state, current job, last heartbeat, queues, health."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON document instead of a table.")
        parser.add_argument("--check", action="store_true",
                            help="Exit 1 unless at least one worker on this host is alive.")

    def handle(self, *args, json: bool = False, check: bool = False, **options):
        workers = sorted(workers_report(), key=lambda w: w["name"])
        if check:
            host = socket.gethostname()
            mine = [w for w in workers if w["host"] == host and w["health"] == "alive"]
            if not mine:
                raise CommandError(f"no live worker on {host}")
            self.stdout.write(f"{len(mine)} live worker(s) on {host}")
            return
        if json:
            self.stdout.write(_json.dumps(workers, indent=2))
            return
        if not workers:
            self.stdout.write("No workers registered.")
            return
        columns = ("name", "host", "pid", "state", "current_job", "last_heartbeat", "queues", "health")
        rows = [[_cell(w[c]) for c in columns] for w in workers]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        self.stdout.write("  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(columns)).rstrip())
        for row in rows:
            self.stdout.write("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())


_json = json


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, str) and len(value) > 19 and value[10] == "T":  # ISO time: to the second
        return value[:19].replace("T", " ")
    return str(value)
