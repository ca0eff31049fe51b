"""Helpers of the reliability tests (imported by name: conftest modules are not importable
reliably when the whole suite is collected)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# --- subprocess workers -----------------------------------------------------------------------

def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def worker_process(settings, name: str, *extra: str, env: dict | None = None, burst: bool = False) -> subprocess.Popen:
    """`manage.py renderworker` as its own process, on this test's database and media."""
    full_env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "RENDER_HEARTBEAT_SECONDS": "1", "RENDER_ABANDONED_AFTER": str(settings.RENDER_ABANDONED_AFTER),
                "LIPSYNC_DEVICE": "cpu", "DJANGO_ENV": "test", **(env or {})}
    args = [sys.executable, "manage.py", "renderworker", "--name", name, "--no-scheduler", *extra]
    if burst:
        args.append("--burst")
    log = open(Path(settings.MEDIA_ROOT).parent / f"worker-{name}.out", "wb")
    return subprocess.Popen(args, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen, sig=None) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig or signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stray_files(media_root: Path, keep=()) -> list[Path]:
    """Files under MEDIA_ROOT/teams that no row references (rejected uploads must leave none)."""
    from jobs.models import Job, Render, Template

    referenced = set()
    for t in Template.objects.all():
        referenced.update({t.file.name, t.poster.name})
        referenced.add(t.file.name + ".lipsync.npz")
    for j in Job.objects.all():
        referenced.add(j.audio.name)
    for r in Render.objects.all():
        referenced.update({r.output.name, r.log_path})
    found = []
    for p in (media_root / "teams").rglob("*") if (media_root / "teams").exists() else ():
        if p.is_file() and str(p.relative_to(media_root)) not in referenced and p not in keep:
            found.append(p)
    return found
