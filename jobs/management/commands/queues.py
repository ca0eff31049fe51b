"""`manage.py queues [--json]`: depth of every RQ queue and its started/failed/deferred/scheduled
registries, the numbers /healthz reports."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from config.health import queue_depths


class Command(BaseCommand):
    requires_system_checks = []  # an operator's probe must answer even while the site is misconfigured
    help = "Show RQ queue depths: queued, started, failed, deferred, scheduled."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON document instead of a table.")

    def handle(self, *args, **options):
        depths = queue_depths()
        if options["json"]:
            self.stdout.write(json.dumps(depths, indent=2))
            return
        columns = ("queued", "started", "failed", "deferred", "scheduled")
        width = max(len("queue"), *(len(n) for n in depths))
        self.stdout.write("QUEUE".ljust(width) + "".join(c.upper().rjust(11) for c in columns))
        for name, counts in depths.items():
            self.stdout.write(name.ljust(width) + "".join(str(counts[c]).rjust(11) for c in columns))
