#!/usr/bin/env python3
"""Container health probe and startup wait, standard library plus Django's own settings.

    healthcheck.py --scope web          GET /healthz?scope=web on the local web server (web containers)
    healthcheck.py --direct             check PostgreSQL and Redis from this container (scheduler)
    healthcheck.py --wait 120 ...       retry --direct until it passes or time runs out (entrypoint)

The HTTP probe sends the first ALLOWED_HOSTS name as Host and X-Forwarded-Proto: https, the
way nginx does, so production's host check and HTTPS redirect answer as they would for people.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def http_probe(scope: str, port: int) -> tuple[bool, str]:
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost").split(",") if h.strip()]
    host = next((h.lstrip(".") for h in hosts if h != "*"), "localhost")
    query = "?scope=web" if scope == "web" else ""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz{query}",
                                     headers={"Host": host, "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return True, response.read().decode()[:500]
    except urllib.error.HTTPError as e:
        return False, f"{e.code} {e.read().decode()[:500]}"
    except OSError as e:
        return False, str(e)


def direct_probe() -> tuple[bool, str]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from config.health import health_report

    report = health_report(scope="web")
    return report["status"] == "ok", json.dumps(report["checks"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scope", default="web", choices=("web", "all"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--direct", action="store_true", help="check the database and Redis without HTTP")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="retry --direct this long")
    args = parser.parse_args()
    if args.wait:
        deadline = time.monotonic() + args.wait
        while True:
            try:
                ok, detail = direct_probe()
            except Exception as e:  # settings or drivers not ready yet: keep waiting
                ok, detail = False, repr(e)
            if ok:
                return 0
            if time.monotonic() > deadline:
                print(f"healthcheck: gave up waiting: {detail}", file=sys.stderr)
                return 1
            print(f"healthcheck: waiting for database and Redis: {detail}", file=sys.stderr)
            time.sleep(2)
    ok, detail = direct_probe() if args.direct else http_probe(args.scope, args.port)
    print(detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
