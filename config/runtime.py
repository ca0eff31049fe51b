"""What a process of the platform prepares before it serves: its folders, and the embedded
Redis when REDIS_URL is not set.

Importing config.settings does neither (tools such as mypy's Django plugin import the settings
too). The entry points call `prepare()`: manage.py for every command, config/asgi.py for the web
server, and the test setup (tests/conftest.py). `runall` owns the embedded Redis: it sets
EMBEDDED_REDIS_START=0 for its children, so a child that restarts while Redis is down does not
start (and orphan) a server of its own.
"""
from __future__ import annotations

import os
from pathlib import Path


def folders() -> list[Path]:
    """The folders a process writes to without creating them at each write."""
    from django.conf import settings

    return [Path(settings.VAR_DIR), Path(settings.LOG_DIR), Path(settings.FILE_UPLOAD_TEMP_DIR),
            Path(settings.STATIC_ROOT)]


def embedded_redis_wanted() -> bool:
    from django.conf import settings

    return bool(settings.EMBEDDED_REDIS) and os.environ.get("EMBEDDED_REDIS_START", "1").lower() not in {"0", "false", "no"}


def prepare(*, redis: bool = True) -> None:
    """Create the folders; start (or find) the embedded Redis when this process may own it."""
    from django.conf import settings

    for folder in folders():
        folder.mkdir(parents=True, exist_ok=True)
    if redis and embedded_redis_wanted():
        from config import embedded_redis

        embedded_redis.ensure(Path(settings.VAR_DIR))
