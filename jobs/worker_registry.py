"""Render-worker names and their RQ registrations.

RQ refuses to start a worker whose name is still registered, and a worker killed with SIGKILL
stays registered for its TTL (420 s). So every process gets a name of its own (host, device, pid
and a random suffix), and a starting worker drops the registrations that provably belong to dead
processes of its own host: a pid that no longer runs, or its own pid (a restarted container
reuses pid 1 and its hostname).
"""
from __future__ import annotations

import logging
import os
import socket
import uuid

log = logging.getLogger(__name__)


def worker_name(*, prefix: str = "", device: str | None = None) -> str:
    """A name no other worker process has had: `<prefix or host-device>-<pid>-<6 hex>`."""
    base = prefix or f"{socket.gethostname()}-{(device or 'auto').replace(':', '')}"
    return f"{base}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def registrations_clean_stale(connection) -> list[str]:
    """Register the death of every worker of this host whose process is gone; returns their names.

    Called before this process registers itself, so a registration carrying its own pid is stale."""
    from rq import Worker

    host, me = socket.gethostname(), os.getpid()
    cleaned = []
    for worker in Worker.all(connection=connection):
        if worker.hostname != host or not worker.pid:
            continue
        if worker.pid == me or not _pid_alive(worker.pid):
            worker.register_death()
            cleaned.append(worker.name)
    if cleaned:
        log.warning("dropped the registrations of dead workers: %s", ", ".join(cleaned))
    return cleaned


def registration_drop(connection, name: str) -> bool:
    """Register the death of the worker called `name` (its supervisor saw the process exit)."""
    from rq import Worker

    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None:
        return False
    worker.register_death()
    return True
