"""Helpers shared by the test folders (imported by name: tests/ is on sys.path through its
conftest.py; conftest modules themselves are not importable reliably when the whole suite is
collected)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from django.core.files.uploadedfile import TemporaryUploadedFile

REPO = Path(__file__).resolve().parents[1]


# --- media ------------------------------------------------------------------------------------

def cut_audio(src: Path, dst: Path, seconds: float, *, rate: int = 16000) -> Path:
    """The first `seconds` of `src` as 16-bit mono WAV (keeps each CPU render to seconds)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        written, limit = 0, int(seconds * rate)
        for frame in inp.decode(audio=0):
            for chunk in resampler.resample(frame):
                if written >= limit:
                    break
                for packet in stream.encode(chunk):
                    out.mux(packet)
                written += chunk.samples
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def upload_of(path: Path, name: str | None = None) -> TemporaryUploadedFile:
    """What Django hands a view for an upload: a temp file on disk (never in memory)."""
    name = name or path.name
    upload = TemporaryUploadedFile(name, "application/octet-stream", path.stat().st_size, None)
    with open(path, "rb") as src:
        shutil.copyfileobj(src, upload.file)
    upload.file.flush()
    upload.seek(0)
    return upload


def write_media(name: str, nbytes: int = 1000, *, age_seconds: float = 0) -> Path:
    """A file under MEDIA_ROOT, back-dated by `age_seconds` (the sweeps skip young files)."""
    from django.conf import settings

    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * nbytes)
    if age_seconds:
        old = time.time() - age_seconds
        os.utime(path, (old, old))
    return path


def probe(path):
    from lipsync.probing import probe as _probe

    return _probe(path)


# --- subprocesses on this test's database -----------------------------------------------------

def database_url() -> str:
    """The test database as a DATABASE_URL, for subprocesses (web server, render workers)."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def worker_process(settings, name: str, *extra: str, env: dict | None = None, burst: bool = False,
                   scheduler: bool = False) -> subprocess.Popen:
    """`manage.py renderworker` as its own process, on this test's database and media; its output
    goes to worker-<name>.out next to MEDIA_ROOT (a pipe nobody reads could block it)."""
    full_env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "RENDER_HEARTBEAT_SECONDS": "1", "RENDER_ABANDONED_AFTER": str(settings.RENDER_ABANDONED_AFTER),
                "LIPSYNC_DEVICE": "cpu", "DJANGO_ENV": "test", **(env or {})}
    # RQ's scheduler (retry backoff) only where a test needs it: schedulers share a lock per queue.
    args = [sys.executable, "manage.py", "renderworker", "--name", name, *([] if scheduler else ["--no-scheduler"]), *extra]
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


def h264_copy(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of the video `src` re-encoded as H.264 at its own size, without audio
    (e.g. the HEVC portrait as a video Chromium can decode)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 25
        stream = out.add_stream("libx264", rate=rate)
        stream.codec_context.time_base = 1 / rate
        stream.width, stream.height, stream.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i, frame in enumerate(inp.decode(vin)):
            if frame.time is not None and frame.time >= seconds:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst
