"""Helpers of the reliability tests only (imported by name: conftest modules are not importable
reliably when the whole suite is collected)."""
from __future__ import annotations

from pathlib import Path

# Subprocess workers, database_url and wait_for are in tests/testutil.py (the jobs tests use them too).


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
