"""Media storage helpers that hide whether files live on a disk or in an S3-compatible bucket.

On one host, STORAGE_BACKEND=filesystem: MEDIA_ROOT is a directory (a volume shared by web and
workers) and the app streams files itself or hands them to nginx with X-Accel-Redirect.
On many hosts, STORAGE_BACKEND=s3: files live in a bucket; browsers download outputs through
short-lived presigned URLs, and workers copy inputs to a local cache because the engine and
PyAV read paths, not streams.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from lipsync.atomic import atomic_path, is_temp_name


def storage_is_remote(storage=None) -> bool:
    """True when the storage has no local paths (S3 and friends)."""
    storage = storage or default_storage
    try:
        storage.path("probe")
    except NotImplementedError:
        return True
    return False


def _unwrap(storage):
    """default_storage is a LazyObject; the class to copy is the storage behind it."""
    from django.utils.functional import LazyObject, empty

    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def _public_signer(storage):
    """A copy of the S3 storage that signs for the endpoint browsers can reach.

    Signing is local (no request), and a SigV4 signature covers the host, so the URL must be
    signed for the public name, not rewritten afterwards.
    """
    public = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public or public == getattr(storage, "endpoint_url", None):
        return storage
    storage = _unwrap(storage)
    cls = type(storage)
    options = {key: getattr(storage, key) for key in ("bucket_name", "access_key", "secret_key", "region_name",
                                                     "addressing_style", "signature_version", "default_acl",
                                                     "querystring_auth", "querystring_expire", "file_overwrite", "location")}
    return cls(**options, endpoint_url=public)


def media_download_url(file_field, *, filename: str | None = None, expires: int | None = None,
                       inline: bool = False, content_type: str | None = None) -> str | None:
    """A presigned GET URL for a stored file under S3; None on the filesystem.

    The access check stays in the caller's view: call this only after it passed, then redirect.
    `filename` sets Content-Disposition so the browser saves a friendly name.
    """
    if not file_field:
        return None
    storage = file_field.storage
    if not storage_is_remote(storage):
        return None
    params = {}
    if filename:
        disposition = "inline" if inline else "attachment"
        safe = filename.replace('"', "").replace("\\", "")
        params["ResponseContentDisposition"] = f'{disposition}; filename="{safe}"'
    if content_type:  # the bucket guesses from the name; the app's allow-list decides instead
        params["ResponseContentType"] = content_type
    return _public_signer(storage).url(
        file_field.name,
        parameters=params or None,
        expire=expires or settings.MEDIA_URL_EXPIRE_SECONDS,
    )


def media_local_path(file_field) -> Path:
    """A local path to read the file from: the file itself on disk, else a cached copy.

    The cache key includes the object's size so a replaced object is fetched again; the copy is
    written to a temporary name and renamed so that two workers never read a half-written file.
    """
    storage = file_field.storage
    if not storage_is_remote(storage):
        return Path(file_field.path)
    size = storage.size(file_field.name)
    digest = hashlib.sha256(f"{file_field.name}:{size}".encode()).hexdigest()[:16]
    suffix = Path(file_field.name).suffix
    target = Path(settings.MEDIA_CACHE_DIR) / digest[:2] / f"{digest}{suffix}"
    if target.exists() and target.stat().st_size == size:
        os.utime(target)  # "recently used", for media_cache_prune
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, open(tmp, "wb") as out, storage.open(file_field.name, "rb") as src:
        shutil.copyfileobj(src, out, length=1024 * 1024)
    return target


def media_work_root() -> Path:
    """Where a file is written before it is stored: MEDIA_ROOT itself on the filesystem (so
    storing is a no-op rename), a per-host scratch folder when the storage is remote."""
    if storage_is_remote():
        return Path(settings.MEDIA_CACHE_DIR) / "work"
    return Path(settings.MEDIA_ROOT)


def media_work_path(name: str) -> Path:
    """The local path to write the file that media_store_file later stores under `name`."""
    return media_work_root() / name


def media_delete(name: str, storage=None) -> None:
    """Delete one stored file; a missing one is not an error."""
    storage = storage or default_storage
    if not name:
        return
    if storage_is_remote(storage):
        storage.delete(name)
    else:
        Path(storage.path(name)).unlink(missing_ok=True)


def media_folder_delete(prefix: str, storage=None) -> None:
    """Delete everything stored under the folder `prefix` (an object's own folder)."""
    storage = storage or default_storage
    if not prefix:
        return
    if not storage_is_remote(storage):
        shutil.rmtree(storage.path(prefix), ignore_errors=True)
        return
    dirs, names = storage.listdir(prefix)
    for name in names:
        storage.delete(f"{prefix}/{name}")
    for sub in dirs:
        media_folder_delete(f"{prefix}/{sub}", storage)


def media_store_file(*, local_path: str | os.PathLike, name: str, storage=None, overwrite: bool = False) -> str:
    """Put a finished local file into storage under `name`; returns the stored name.

    Filesystem: an atomic rename when source and MEDIA_ROOT share a disk (the usual case for a
    render written next to its destination), a copy otherwise. S3: a multipart upload.
    """
    storage = storage or default_storage
    if not storage_is_remote(storage):
        dest = Path(storage.path(name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local_path, dest)
        except OSError:  # another filesystem: copy to a temp name beside it, then rename
            with atomic_path(dest) as tmp:
                shutil.copyfile(local_path, tmp)
            Path(local_path).unlink(missing_ok=True)
        return name
    if overwrite:  # file_overwrite is off (never replace silently); a log is replaced on purpose
        storage.delete(name)
    with open(local_path, "rb") as fh:
        stored = storage.save(name, File(fh, name=Path(name).name))
    Path(local_path).unlink(missing_ok=True)
    return stored


def media_cache_prune(*, now: float | None = None, dry_run: bool = False) -> list[str]:
    """Prune this host's MEDIA_CACHE_DIR; returns the removed paths.

    Removed: temp files (lipsync.atomic's rule) and copies unused (mtime, refreshed on each use)
    for MEDIA_CACHE_MAX_AGE_SECONDS; then, while the folder is over MEDIA_CACHE_MAX_BYTES, the
    least recently used. Nothing used within MAINTENANCE_MIN_AGE_SECONDS goes (a worker may be
    about to read it).
    """
    root = Path(settings.MEDIA_CACHE_DIR)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    fresh, max_age = float(settings.MAINTENANCE_MIN_AGE_SECONDS), float(settings.MEDIA_CACHE_MAX_AGE_SECONDS)
    files = []
    for path in root.rglob("*"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            files.append((st.st_mtime, st.st_size, path))
    files.sort()  # least recently used first
    removed, kept_bytes = [], sum(size for _, size, _ in files)
    for mtime, size, path in files:
        age = now - mtime
        too_old = age >= max_age or (is_temp_name(path.name) and age >= fresh)
        too_big = kept_bytes > settings.MEDIA_CACHE_MAX_BYTES and age >= fresh
        if not (too_old or too_big):
            continue
        removed.append(str(path))
        kept_bytes -= size
        if not dry_run:
            path.unlink(missing_ok=True)
    return removed
