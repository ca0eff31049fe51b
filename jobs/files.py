"""File responses for access-checked media: HTTP Range in the app (development, small sites),
or X-Accel-Redirect so nginx streams the bytes (MEDIA_SERVE=nginx). Zips are streamed with
zipstream-ng, never built in memory or on disk.

Callers do the access check first (team_object_or_404); these functions only serve.
"""
from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from config.storage import media_download_url, storage_is_remote

CHUNK = 256 * 1024
ALLOWED_TYPES = {"video/mp4", "image/jpeg", "text/plain; charset=utf-8", "application/zip"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_type_for(path) -> str:
    """From an allow-list only: anything else is served as a download, never as HTML."""
    ext = Path(str(path)).suffix.lower()
    if ext in (".mp4", ".m4v", ".mov"):
        return "video/mp4"
    if ext in (".jpg", ".jpeg"):
        return "image/jpeg"
    if ext in (".log", ".txt"):
        return "text/plain; charset=utf-8"
    guessed = mimetypes.guess_type(str(path))[0] or ""
    if guessed.startswith("audio/"):
        return guessed
    return "application/octet-stream"


def _disposition(filename: str, attachment: bool) -> str:
    kind = "attachment" if attachment else "inline"
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "file"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _secure(response, content_type: str):
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    if not content_type.startswith(("video/", "audio/", "image/")):
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive) for one satisfiable range; None to ignore the header (absent,
    malformed, several ranges); "unsatisfiable" for a 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _file_chunks(path, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            data = f.read(min(CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


def serve_file(request, path, *, filename: str | None = None, attachment: bool = False,
               content_type: str | None = None):
    """Serve `path` (under MEDIA_ROOT) with Range support or through nginx."""
    path = Path(path)
    media_root = Path(settings.MEDIA_ROOT).resolve()
    try:
        resolved = path.resolve(strict=True)
        relative = resolved.relative_to(media_root)
    except (FileNotFoundError, ValueError, OSError):
        raise Http404("Not found") from None
    if not resolved.is_file():
        raise Http404("Not found")
    content_type = content_type or content_type_for(resolved)
    filename = filename or resolved.name

    if settings.MEDIA_SERVE == "nginx":
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX.rstrip("/") + "/" + quote(relative.as_posix())
        response["Content-Disposition"] = _disposition(filename, attachment)
        return _secure(response, content_type)

    size = resolved.stat().st_size
    wanted = parse_range(request.headers.get("Range", ""), size)
    if isinstance(wanted, str):  # "unsatisfiable", parse_range's one string
        response = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return _secure(response, "text/plain")
    if wanted is None or request.method == "HEAD":
        start, end, status = 0, size - 1, 200
    else:
        start, end = wanted
        status = 206
    length = max(0, end - start + 1)
    body = [] if request.method == "HEAD" else _file_chunks(resolved, start, length)
    streaming = StreamingHttpResponse(body, status=status, content_type=content_type)
    streaming["Content-Length"] = str(length if request.method != "HEAD" else size)
    streaming["Accept-Ranges"] = "bytes"
    if status == 206:
        streaming["Content-Range"] = f"bytes {start}-{end}/{size}"
    streaming["Content-Disposition"] = _disposition(filename, attachment)
    return _secure(streaming, content_type)


class _Stored:
    """A storage name (a FileField's, or a plain string such as Render.log_path) in the shape
    media_download_url expects."""

    def __init__(self, name: str):
        self.name, self.storage = name, default_storage

    def __bool__(self):
        return bool(self.name)


def serve_media(request, name, *, filename: str | None = None, attachment: bool = False,
                content_type: str | None = None):
    """Serve the stored file `name` (a FileField or its name) after the caller's access check:
    a redirect to a short-lived presigned URL when the storage is remote, else serve_file."""
    name = getattr(name, "name", name)
    if not name:
        raise Http404("Not found")
    if storage_is_remote():
        content_type = content_type or content_type_for(name)
        url = media_download_url(_Stored(name), filename=filename or Path(name).name, inline=not attachment,
                                 content_type=content_type)
        assert url is not None  # remote storage: media_download_url always signs a URL
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"  # the URL expires; never reuse the redirect
        return response
    return serve_file(request, Path(settings.MEDIA_ROOT) / name, filename=filename, attachment=attachment,
                      content_type=content_type)


def _stored_chunks(name: str):
    with default_storage.open(name, "rb") as f:
        while data := f.read(CHUNK):
            yield data


def safe_name(name: str, *, default: str = "video") -> str:
    """A file name safe in any zip tool: no path parts, no control or reserved characters."""
    name = re.sub(r'[\x00-\x1f\x7f<>:"/\\|?*]+', "_", name or "").strip(" ._")
    return name[:120] or default


def unique_names(names: list[str], *, ext: str) -> list[str]:
    seen: dict[str, int] = {}
    result: list[str] = []
    for name in names:
        base = safe_name(name)
        key = base.lower()
        count = seen.get(key, 0)
        seen[key] = count + 1
        candidate = f"{base}{ext}" if count == 0 else f"{base} ({count + 1}){ext}"
        while candidate.lower() in {r.lower() for r in result}:
            count += 1
            candidate = f"{base} ({count + 1}){ext}"
        result.append(candidate)
    return result


def render_download_name(render, *, public: bool = False, with_batch: bool = False) -> str:
    """The one rule for what a finished video downloads as: its template's name ("Anna.mp4"),
    in the portal followed by its batch ("Anna - Spring launch.mp4"); from a public share link
    nothing of the team, only the render's short id ("mouthpiece-1a2b3c4d.mp4")."""
    if public:
        return f"mouthpiece-{str(render.pk)[:8]}.mp4"
    name = render.template_name or "video"
    return safe_name(f"{name} - {render.job}" if with_batch else name) + ".mp4"


def zip_entries(renders) -> list[tuple[str, str]]:
    """(storage name, name in the zip) for each finished video among `renders`, named after its
    template and made unique ("Anna.mp4", "Anna (2).mp4"): every zip of videos is built here."""
    done = [r for r in renders if r.has_video]
    names = unique_names([r.template_name or "video" for r in done], ext=".mp4")
    return [(r.output.name, name) for r, name in zip(done, names, strict=True)]


def job_zip_name(job) -> str:
    """The file name of a batch's zip: its title, else its short id."""
    return safe_name(job.title or f"job-{str(job.pk)[:8]}") + ".zip"


def zip_response(entries: list[tuple[str, str]], *, filename: str):
    """Stream a zip of (storage name, name in zip) without compression (videos do not shrink);
    its size is known up front, so browsers show real download progress. A remote storage is
    read object by object as the zip streams."""
    from zipstream import ZIP_STORED, ZipStream

    zs = ZipStream(compress_type=ZIP_STORED, sized=True)
    remote = storage_is_remote()
    for name, arcname in entries:
        if remote:
            if default_storage.exists(name):
                zs.add(_stored_chunks(name), arcname, size=default_storage.size(name))
            continue
        disk_path = Path(settings.MEDIA_ROOT) / name
        if os.path.isfile(disk_path):
            zs.add_path(disk_path, arcname)
    response = StreamingHttpResponse(zs, content_type="application/zip")
    response["Content-Length"] = str(len(zs))
    response["Content-Disposition"] = _disposition(filename, True)
    response["X-Content-Type-Options"] = "nosniff"
    return response
