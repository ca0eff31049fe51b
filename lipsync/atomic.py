"""One naming rule for a file while it is written: `.<name>.<8 hex>.tmp` beside its destination.

Every writer of the engine and the platform (renders, caches, posters, stored copies) writes to
`temp_path_for(dest)` and renames onto `dest` when the file is complete, so a reader never sees
half a file and an interrupted write leaves a name that `is_temp_name` recognises; the sweeps
(jobs/maintenance.py, config/storage.py's cache pruning) remove such files once they are old.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

_TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")
# Names earlier versions gave their temp files, still swept after an upgrade.
_LEGACY = re.compile(r"(\.?tmp-.*)|(\.part-.*)|(.*\.(tmp|partial)(\..*)?)")


def temp_path_for(dest: str | os.PathLike) -> Path:
    """The temp path to write `dest` under, in the same folder (so the rename is atomic)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether a file name (no folder) is one a writer gives a file it has not finished."""
    return bool(_TEMP.fullmatch(name) or _LEGACY.fullmatch(name))


def stale_temp_paths(dest: str | os.PathLike) -> list[Path]:
    """Temp files of earlier writes of `dest` (temp_path_for's names beside it)."""
    dest = Path(dest)
    return [p for p in dest.parent.glob(f".{dest.name}.*.tmp") if _TEMP.fullmatch(p.name)]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `dest`, on any error it is removed."""
    dest = Path(dest)
    tmp = temp_path_for(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
