"""Periodic housekeeping (services): retention purge of render outputs, orphan files under
MEDIA_ROOT/teams/, abandoned temp files. Run by `manage.py maintenance [--dry-run] [--loop S]`
(the scheduler) or enqueued on the "maintenance" RQ queue (`maintenance_task`).

Every function takes `dry_run`: it then reports what it would delete and deletes nothing.
Files younger than MAINTENANCE_MIN_AGE_SECONDS are never touched, so an upload or a render
that is still writing (and whose row may not be committed yet) is never raced.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from accounts.quotas import render_expiry_for, storage_charged_for, storage_release
from config.storage import media_cache_prune, media_delete, storage_is_remote
from jobs.models import Job, Render, Template
from lipsync.atomic import is_temp_name

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".m4v"}


@dataclass
class MaintenanceReport:
    dry_run: bool = False
    expired_renders: list[str] = field(default_factory=list)  # render ids
    freed_bytes: int = 0
    orphan_files: list[str] = field(default_factory=list)     # paths relative to MEDIA_ROOT
    temp_files: list[str] = field(default_factory=list)       # absolute paths
    cache_files: list[str] = field(default_factory=list)      # absolute paths in MEDIA_CACHE_DIR
    removed_dirs: list[str] = field(default_factory=list)
    recovered_renders: int = 0

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{verb}: {len(self.expired_renders)} expired outputs ({self.freed_bytes} bytes), "
                f"{len(self.orphan_files)} orphan files, {len(self.temp_files)} temp files, "
                f"{len(self.cache_files)} cached copies; "
                f"recovered {self.recovered_renders} abandoned renders")


def _min_age() -> float:
    return float(settings.MAINTENANCE_MIN_AGE_SECONDS)


def _old_enough(path: Path, now_ts: float) -> bool:
    try:
        return now_ts - path.stat().st_mtime >= _min_age()
    except FileNotFoundError:
        return False


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# --- Retention ----------------------------------------------------------------------------

def expired_renders(*, now=None, team: Team | None = None):
    """Finished renders whose output has passed the team's retention (expires_at, or
    finished + retention days for rows written before expires_at was set)."""
    now = now or timezone.now()
    qs = Render.objects.filter(status=Render.Status.DONE).select_related("team", "job")
    if team is not None:
        qs = qs.filter(team=team)
    candidates = qs.filter(Q(expires_at__lte=now) | Q(expires_at__isnull=True, finished__isnull=False))
    for render in candidates.iterator():
        expires = render.expires_at or render_expiry_for(team=render.team, finished=render.finished)
        if expires <= now:
            yield render


def render_expire(*, render: Render, dry_run: bool = False, reason: str = "retention", note: str = "") -> int:
    """Delete one render's output, free its storage in the ledger, keep the row as "expired"
    (the retention purge, or a person deleting it from the gallery: `reason` "deleted").

    Returns the bytes freed. Safe to run twice: a render no longer "done" is left alone.
    """
    freed = storage_charged_for(render=render) or 0
    if dry_run:
        return max(freed, 0)
    from jobs.services import render_transition

    with transaction.atomic():
        locked = Render.objects.select_for_update().filter(pk=render.pk, status=Render.Status.DONE).first()
        if locked is None:
            return 0
        output_name = locked.output.name
        freed = storage_charged_for(render=locked)
        if not render_transition(render=locked, to=Render.Status.EXPIRED, from_=Render.Status.DONE, output=""):
            return 0
        storage_release(team=locked.team, nbytes=freed, reason=reason, job=locked.job, render=locked,
                        note=note or f"output expired {locked.expires_at or ''}".strip())
        # The file goes only once the row says so; a crash in between leaves an orphan, which
        # the orphan sweep removes later, never a row pointing at nothing.
        if output_name:
            transaction.on_commit(lambda: media_delete(output_name))
    return max(freed, 0)


def outputs_expired_purge(*, now=None, team: Team | None = None, dry_run: bool = False,
                          report: MaintenanceReport | None = None) -> MaintenanceReport:
    report = report or MaintenanceReport(dry_run=dry_run)
    for render in list(expired_renders(now=now, team=team)):
        freed = render_expire(render=render, dry_run=dry_run)
        report.expired_renders.append(str(render.pk))
        report.freed_bytes += freed
        log.info("%s expired output of render %s (%d bytes)", "would delete" if dry_run else "deleted", render.pk, freed)
    return report


# --- Orphans and temp files ---------------------------------------------------------------

def _uuid_of(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class _LiveMedia:
    """What the database references under MEDIA_ROOT/teams/, loaded once per sweep."""

    def __init__(self):
        root = Path(settings.MEDIA_ROOT)
        self.team_ids = {str(pk) for pk in Team.objects.values_list("pk", flat=True)}
        self.files: set[Path] = set()
        self.ids: set[str] = set()
        self.audio_sha: set[str] = set()
        for pk, f, poster in Template.objects.values_list("pk", "file", "poster"):
            self.ids.add(str(pk))
            self.files.update(root / n for n in (f, poster) if n)
        for pk, audio, sha in Job.objects.values_list("pk", "audio", "audio_sha256"):
            self.ids.add(str(pk))
            if audio:
                self.files.add(root / audio)
            if sha:
                self.audio_sha.add(sha)
        self.expired_ids: set[str] = set()
        for pk, out, log_path, status in Render.objects.values_list("pk", "output", "log_path", "status"):
            self.ids.add(str(pk))
            if status == Render.Status.EXPIRED:
                self.expired_ids.add(str(pk))
            self.files.update(root / n for n in (out, log_path) if n)
        self.names_by_dir: dict[Path, set[str]] = {}
        for f in self.files:
            self.names_by_dir.setdefault(f.parent, set()).add(f.name)

    def owns(self, path: Path, rel_parts: tuple[str, ...]) -> bool:
        """True when a row still needs `path` (teams/<team>/...)."""
        if rel_parts[1] not in self.team_ids:
            return False
        if path in self.files:
            return True
        # A sidecar of a referenced file (e.g. the prep cache "source.mp4.lipsync.npz").
        if any(path.name.startswith(n + ".") for n in self.names_by_dir.get(path.parent, ())):
            return True
        # Files inside an object's folder, or named after it (<render id>.mp4, <id>.log, ...),
        # live as long as that object: every id in the path must still be a row.
        stem = path.name.split(".", 1)[0]
        # An expired render keeps its row and log, never its video (a purge interrupted midway).
        if _uuid_of(stem) in self.expired_ids and path.suffix.lower() in _VIDEO_SUFFIXES:
            return False
        ids = [u for u in map(_uuid_of, (*rel_parts[2:-1], stem)) if u]
        if ids:
            return all(u in self.ids for u in ids)
        # Caches keyed by the audio's sha256 live while a job uses that audio.
        shas = [p for p in (*rel_parts[2:-1], stem) if _SHA256.match(p)]
        if shas:
            return all(s in self.audio_sha for s in shas)
        # A file the platform does not name this way: keep it rather than guess.
        return True


def orphan_files_sweep(*, dry_run: bool = False, report: MaintenanceReport | None = None) -> MaintenanceReport:
    """Delete files under MEDIA_ROOT/teams/ that no row needs (and empty folders left behind)."""
    report = report or MaintenanceReport(dry_run=dry_run)
    root = Path(settings.MEDIA_ROOT)
    teams_dir = root / "teams"
    # A bucket is not walked: listing every object of every team on each sweep costs more than
    # the rare orphan a crash leaves (use a bucket lifecycle rule for those, see docs/DEPLOY.md).
    if storage_is_remote() or not teams_dir.is_dir():
        return report
    live = _LiveMedia()
    now_ts = time.time()
    for dirpath, _dirnames, filenames in os.walk(teams_dir):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root)
            if len(rel.parts) < 3 or not _old_enough(path, now_ts):
                continue
            if is_temp_name(name) and path not in live.files:
                report.temp_files.append(str(path))
                if not dry_run:
                    _unlink(path)
                continue
            if not live.owns(path, rel.parts):
                report.orphan_files.append(str(rel))
                if not dry_run:
                    _unlink(path)
    _audio_cache_sweep(live, root, now_ts, dry_run, report)
    if not dry_run:
        emptied = {(root / p).parent for p in report.orphan_files} | {Path(p).parent for p in report.temp_files}
        _remove_empty_dirs(teams_dir, report, now_ts, emptied)
    return report


def _audio_cache_sweep(live: _LiveMedia, root: Path, now_ts: float, dry_run: bool, report: MaintenanceReport) -> None:
    """Audio analyses (MEDIA_ROOT/cache/audio/<sha256>.npz) go once no job uses that audio."""
    cache = root / "cache" / "audio"
    if not cache.is_dir():
        return
    for path in cache.iterdir():
        sha = path.name.split(".", 1)[0]
        if path.is_file() and _SHA256.match(sha) and sha not in live.audio_sha and _old_enough(path, now_ts):
            report.orphan_files.append(str(path.relative_to(root)))
            if not dry_run:
                _unlink(path)


def _remove_empty_dirs(top: Path, report: MaintenanceReport, now_ts: float, emptied: set[Path]) -> None:
    """Empty folders go once old; an object's own folder (named by its id) as soon as this
    sweep emptied it, since no new upload ever reuses a deleted object's id."""
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        path = Path(dirpath)
        if path == top or filenames or any((path / d).exists() for d in dirnames):
            continue
        if _old_enough(path, now_ts) or (path in emptied and _uuid_of(path.name)):
            try:
                path.rmdir()
                report.removed_dirs.append(str(path))
            except OSError:
                pass  # something arrived meanwhile


def temp_files_sweep(*, dry_run: bool = False, report: MaintenanceReport | None = None) -> MaintenanceReport:
    """Abandoned upload temp files (FILE_UPLOAD_TEMP_DIR) and *.tmp / *.partial under MEDIA_ROOT
    outside teams/ (teams/ is covered by the orphan sweep)."""
    report = report or MaintenanceReport(dry_run=dry_run)
    now_ts = time.time()
    upload_dir = Path(settings.FILE_UPLOAD_TEMP_DIR) if settings.FILE_UPLOAD_TEMP_DIR else None
    if upload_dir and upload_dir.is_dir():
        for path in upload_dir.iterdir():
            if path.is_file() and _old_enough(path, now_ts):
                report.temp_files.append(str(path))
                if not dry_run:
                    _unlink(path)
    root = Path(settings.MEDIA_ROOT)
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            if Path(dirpath) == root:
                dirnames[:] = [d for d in dirnames if d != "teams"]
            for name in filenames:
                path = Path(dirpath) / name
                if is_temp_name(name) and _old_enough(path, now_ts):
                    report.temp_files.append(str(path))
                    if not dry_run:
                        _unlink(path)
    return report


def _recover_abandoned(report: MaintenanceReport, dry_run: bool) -> None:
    """Abandoned-render recovery belongs to the services; housekeeping only calls it."""
    if dry_run:
        return
    from jobs import services

    try:
        result = services.renders_recover_abandoned()
        report.recovered_renders = len(result) if hasattr(result, "__len__") else int(result or 0)
    except Exception:  # one failing part must not stop the housekeeping
        log.exception("abandoned-render recovery failed")


def maintenance_run(*, dry_run: bool = False, now=None) -> MaintenanceReport:
    """Everything the scheduler does every few minutes, in a safe order."""
    report = MaintenanceReport(dry_run=dry_run)
    _recover_abandoned(report, dry_run)
    outputs_expired_purge(now=now, dry_run=dry_run, report=report)
    orphan_files_sweep(dry_run=dry_run, report=report)
    temp_files_sweep(dry_run=dry_run, report=report)
    report.cache_files = media_cache_prune(dry_run=dry_run)  # this host's; each worker prunes its own too
    log.info("maintenance %s", report.summary())
    return report


def maintenance_task(dry_run: bool = False) -> str:
    """RQ entry point on the "maintenance" queue."""
    return maintenance_run(dry_run=dry_run).summary()


def maintenance_enqueue(*, dry_run: bool = False):
    import django_rq

    # Nothing to wait for in the database: enqueue now, not on commit.
    return django_rq.get_queue("maintenance", commit_mode="auto").enqueue(maintenance_task, dry_run=dry_run)
