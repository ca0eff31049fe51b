"""The browser harness: Debian's chromium driven by Playwright against the real platform.

A module-wide live server is `uvicorn config.asgi:application` (HTTP and websockets) in a
subprocess, plus one real `manage.py renderworker` subprocess that takes template preparation
and renders; both read the test database this session prepared and the media folder below.
Screenshots and the subprocess logs land in artifacts/ (CI keeps that folder).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from browser_testutil import DESKTOP
from testutil import database_url

from config import webserver

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "artifacts" / "browser-logs"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"web server did not listen on {port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # a warm shutdown: the worker hands its render back
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in a greenlet of this thread, so Django
    # takes the test's own ORM calls for async code; allowed only while this module runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            instance = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def live_server_proc(django_db_setup, tmp_path_factory):
    """web server + a render worker for this module, on the session's test database."""
    import django_rq
    from django.conf import settings

    media_root = tmp_path_factory.mktemp("browser-media")
    LOGS.mkdir(parents=True, exist_ok=True)
    django_rq.get_connection("default").flushdb()  # no queued work left by earlier modules
    port = _free_port()
    # The same mode as this process (password hashers, cache prefix), whatever set it.
    env = {**os.environ, "DJANGO_ENV": settings.DJANGO_ENV, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(media_root),
           "LIPSYNC_DEVICE": "cpu", "PYTHONUNBUFFERED": "1",
           # Playwright's wait_for_function evaluates its predicate with eval in the page; the
           # app's own scripts never do (tests/deploy/test_csp.py), and inline scripts stay refused.
           "CSP_SCRIPT_SRC_EXTRA": "'unsafe-eval'"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the servers are not driven by Playwright
    # Several suites may run at once, each with its own VAR_DIR: one pair of logs per VAR_DIR.
    prefix = Path(settings.VAR_DIR).name
    web_log, worker_log = LOGS / f"{prefix}-web server.log", LOGS / f"{prefix}-worker.log"
    procs = []
    try:
        with open(web_log, "w") as out:
            web = subprocess.Popen(webserver.command("127.0.0.1", port),
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(web)
        with open(worker_log, "w") as out:
            worker = subprocess.Popen([sys.executable, "manage.py", "renderworker", "--queues", "prep,high,default,low",
                                       "--name", f"browser-{os.getpid()}", "--no-scheduler", "--device", "cpu"],
                                      cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(worker)
        _wait_for_port(port, web, web_log)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", media_root=media_root, worker=worker, worker_log=worker_log)
    finally:
        for proc in procs:
            _stop(proc)
        django_rq.get_connection("default").flushdb()


@pytest.fixture
def live(live_server_proc, settings, transactional_db):
    """The live server for one test; the test process shares its media folder."""
    settings.MEDIA_ROOT = live_server_proc.media_root
    assert live_server_proc.worker.poll() is None, live_server_proc.worker_log.read_text()[-3000:]
    return live_server_proc


@pytest.fixture
def new_page(browser, live):
    """new_page(viewport=DESKTOP, **context options) -> a page in a fresh browser context."""
    contexts, script_errors, csp_violations = [], [], []

    def make(viewport=DESKTOP, **options):
        context = browser.new_context(viewport=viewport, base_url=live.url, accept_downloads=True, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: script_errors.append(f"{page.url}: {error}"))
        # Every page of the suite runs under the site's Content-Security-Policy: a violation
        # (an inline script or style the policy refuses) is a failure of the test that saw it.
        page.on("console", lambda msg: csp_violations.append(f"{page.url}: {msg.text}")
                if "Content Security Policy" in msg.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert script_errors == [], f"uncaught JavaScript errors: {script_errors}"
    assert csp_violations == [], f"Content-Security-Policy violations: {csp_violations}"


@pytest.fixture
def finished_job(cast, settings):
    """finished_job([video paths], team=..., title=...) -> a Job whose renders are done: each
    template is a real video (probed, with a real poster) and each output a copy of it, so the
    pages under test get real players without waiting for CPU renders."""
    import uuid

    from django.utils import timezone

    from jobs.models import Job, Render, Template
    from lipsync.probing import probe, write_poster

    def make(videos, *, team=None, title="Launch video", user=None):
        team = team or cast.acme
        root = Path(settings.MEDIA_ROOT)
        job = Job.objects.create(team=team, created_by=user or cast.alice, title=title, status=Job.Status.DONE,
                                 audio=f"teams/{team.pk}/jobs/x/audio.wav", audio_filename="speech.wav",
                                 audio_duration=2.0, started=timezone.now(), finished=timezone.now())
        for video in videos:
            video = Path(video)
            info = probe(video)
            template = Template(id=uuid.uuid4(), team=team, name=video.stem, original_filename=video.name,
                                size_bytes=video.stat().st_size, duration=info.duration, fps=info.fps,
                                width=info.width, height=info.height, video_codec=info.video_codec or "",
                                audio_codec=info.audio_codec or "", has_audio=info.has_audio,
                                container=info.format_name, prep_status="ready", prep_face_fraction=1.0)
            template.file.name = f"teams/{team.pk}/templates/{template.id}/source.mp4"
            template.poster.name = f"teams/{team.pk}/templates/{template.id}/poster.jpg"
            (root / template.file.name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(video, root / template.file.name)
            write_poster(video, root / template.poster.name)
            template.save(force_insert=True)
            r = Render(job=job, team=team, template=template, template_name=template.name, status="done", progress=1.0,
                       started=timezone.now(), finished=timezone.now(), output_duration=info.duration)
            r.output.name = f"teams/{team.pk}/jobs/{job.id}/renders/{r.id}.mp4"
            (root / r.output.name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(video, root / r.output.name)
            r.output_size_bytes = (root / r.output.name).stat().st_size
            r.save(force_insert=True)
        return job

    return make


@pytest.fixture(scope="session")
def portrait_h264(media_dir, tmp_path_factory):
    """2 s of the 1080x1920 portrait as H.264 (Chromium's player cannot decode its HEVC)."""
    from testutil import h264_copy

    return h264_copy(media_dir / "portrait_hevc_1080x1920.mp4",
                     tmp_path_factory.mktemp("portrait") / "portrait_1080x1920.mp4", 2.0)
