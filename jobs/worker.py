"""The render worker: a non-forking RQ worker that keeps the engine resident and runs exactly
one render at a time. Many of them (one per GPU, on any host) share one Redis.

A warm shutdown (SIGTERM) asks the running render to stop at its next frame batch; the render
goes back to the queue for another worker (see services.render_execute).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TypedDict

from django.conf import settings
from django.db import connections
from rq.worker import SimpleWorker

from config.storage import media_cache_prune
from lipsync.constants import worker_thread_env  # noqa: F401 - the thread budget of N workers

log = logging.getLogger(__name__)

_engines: dict[str, object] = {}
_engine_lock = threading.Lock()
_stop = threading.Event()


class _Current(TypedDict):
    """This process's render worker and its device, once it started."""

    worker: RenderWorker | None
    device: str | None


_current: _Current = {"worker": None, "device": None}


def engine_get(device: str | None = None):
    """The engine for `device` (default: this worker's, else settings.LIPSYNC_DEVICE), loaded
    once per process."""
    from lipsync.engines import load_engine

    device = device or _current["device"] or settings.LIPSYNC_DEVICE or None
    key = f"{settings.LIPSYNC_ENGINE}@{device or 'auto'}"
    with _engine_lock:
        if key not in _engines:
            log.info("loading engine %s", key)
            options = {"checkpoint": settings.LIPSYNC_CHECKPOINT} if settings.LIPSYNC_CHECKPOINT else {}
            _engines[key] = load_engine(settings.LIPSYNC_ENGINE, device=device, **options)
        return _engines[key]


def render_worker_count(requested: int | None = None) -> int:
    """How many render workers a CPU host runs: `requested`, else RENDER_WORKERS, else one per
    two cores (a render keeps about two busy: its decode/encode threads and the mouth work)."""
    n = requested or settings.RENDER_WORKERS or (os.cpu_count() or 1) // 2
    return max(1, int(n))


def stop_requested() -> bool:
    return _stop.is_set()


def current_name() -> str:
    worker = _current["worker"]
    return worker.name if worker is not None else f"{socket.gethostname()}-{os.getpid()}"


def _close_stale_connections() -> None:
    """django.db.close_old_connections(), except for a connection inside an atomic block: a
    worker run in-process by a test shares the test's transaction, which must stay open."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


_last_prune = {"at": float("-inf")}


def _media_cache_prune(*, now: float | None = None) -> None:
    """Each host keeps its own copies of stored media (S3): pruned after a job, at most once
    per MEDIA_CACHE_PRUNE_INTERVAL_SECONDS (the prune walks the whole folder, and a worker
    may finish a short render every few seconds)."""
    now = time.time() if now is None else now
    if now - _last_prune["at"] < settings.MEDIA_CACHE_PRUNE_INTERVAL_SECONDS:
        return
    _last_prune["at"] = now
    try:
        removed = media_cache_prune(now=now)
        if removed:
            log.info("media cache: removed %d files", len(removed))
    except OSError:
        log.exception("media cache pruning failed")


class RenderWorker(SimpleWorker):
    """SimpleWorker (no fork: the engine stays loaded) + graceful stop + abandoned-render watchdog."""

    # RQ waits 1, 2, 4 ... up to 60 s between reconnection attempts while Redis is away; capped
    # here so an idle worker takes renders again within seconds of Redis coming back.
    max_connection_wait_time = 2.0

    def __init__(self, *args, device: str | None = None, watchdog: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device
        self.watchdog = watchdog
        _current["worker"], _current["device"] = self, device
        _stop.clear()

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        _stop.set()  # the running render's cancelled() now returns True

    def execute_job(self, job, queue):
        # A long-lived process outlives its database connections (server restart, failover,
        # idle timeouts): drop a dead or expired one before and after every job, as Django
        # does around each web request.
        _close_stale_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            _close_stale_connections()
            _media_cache_prune()

    def work(self, *args, **kwargs):
        if self.watchdog:
            threading.Thread(target=self._watch, name="abandoned-renders", daemon=True).start()
        try:
            return super().work(*args, **kwargs)
        finally:
            _stop.set()

    def _watch(self):
        """Every worker looks for renders abandoned by dead workers (rows are taken over with a
        conditional update, so several watchdogs never recover one render twice)."""
        from jobs.services import renders_recover_abandoned

        interval = max(1.0, min(10.0, settings.RENDER_ABANDONED_AFTER / 3))
        while not _stop.wait(interval):
            try:
                recovered = renders_recover_abandoned()
                if recovered:
                    log.warning("recovered abandoned renders: %s", ", ".join(recovered))
            except Exception:
                log.exception("abandoned-render check failed")
            finally:
                connections.close_all()
