"""The test cast (DESIGN.md): team "acme" with alice (owner), bob (member), vera (viewer);
team "globex" with charlie (owner). Media come from ../shared/media."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    assert MEDIA.is_dir(), f"test media missing: {MEDIA}"
    return MEDIA


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """What an entry point prepares (config/runtime.py): folders and the embedded Redis; the
    settings import does neither. After pytest-django has set Django up, before collection
    (a module may build a test client, and WhiteNoise looks for its folder then)."""
    from config import runtime

    runtime.prepare()


@pytest.fixture(autouse=True)
def _media_root(request, tmp_path_factory):
    """Each Django test writes its media under its own folder (outside the test's tmp_path,
    which stays empty for the test's own files). The engine's tests (tests/lipsync) don't use
    Django at all, so they don't get (or pay for) the settings fixture."""
    if "tests/lipsync" in str(request.node.path).replace("\\", "/"):
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    yield
    # A request with Accept-Language: zh-hans leaves Chinese active in this thread; the next test
    # would otherwise get Chinese error messages.
    from django.utils import translation

    translation.deactivate()


# A mid-month instant: tests that count "this month" must not depend on today's date (a render
# finished "a day ago" is last month's on the 1st).
MID_MONTH = "2026-06-15T12:00:00+00:00"


@pytest.fixture
def fixed_clock():
    """Freeze the clock (ticking) at MID_MONTH, or at clock.move_to(when) later in the test."""
    import time_machine

    with time_machine.travel(MID_MONTH, tick=True) as traveller:
        yield traveller


def _user(email: str):
    from allauth.account.models import EmailAddress

    from accounts.models import User

    user = User.objects.create_user(email=email, password=PASSWORD, display_name=email.split("@")[0].title())
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def cast(db):
    """A namespace with the two teams and their four people."""
    from types import SimpleNamespace

    from accounts.models import Membership, Team

    acme = Team.objects.create(name="Acme", slug="acme")
    globex = Team.objects.create(name="Globex", slug="globex")
    alice, bob, vera, charlie = (_user(f"{n}@example.com") for n in ("alice", "bob", "vera", "charlie"))
    Membership.objects.create(team=acme, user=alice, role="owner")
    Membership.objects.create(team=acme, user=bob, role="member")
    Membership.objects.create(team=acme, user=vera, role="viewer")
    Membership.objects.create(team=globex, user=charlie, role="owner")
    return SimpleNamespace(acme=acme, globex=globex, alice=alice, bob=bob, vera=vera, charlie=charlie, password=PASSWORD)


@pytest.fixture
def redis_conn():
    """The real Redis the settings point at (embedded or REDIS_URL), emptied for the test."""
    import django_rq

    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


# --- real templates, jobs and workers (jobs, reliability) ---------------------------------------

@pytest.fixture(scope="session")
def prep_cache(media_dir, tmp_path_factory):
    """Face tracking of each shared template, done once per session: {file name: (npz, mtime_ns)}."""
    import shutil

    from lipsync.prepare import cache_path, prepare_template

    folder = tmp_path_factory.mktemp("prep")
    cache = {}

    def get(name: str):
        if name not in cache:
            video = folder / name
            shutil.copy2(media_dir / name, video)
            prepare_template(video)
            cache[name] = (cache_path(video), video.stat().st_mtime_ns)
        return cache[name]

    return get


@pytest.fixture
def make_template(cast, media_dir, prep_cache):
    """Upload a real template for a team (a shared media file by name, or any file by `path`) and,
    when `warm` and shared, give it the session's face-tracking cache."""
    import os
    import shutil

    from testutil import upload_of

    from jobs import services
    from lipsync.prepare import cache_path

    def make(name="face_square_1.mp4", *, path=None, team=None, user=None, warm=True, title=None, allow_duplicate=True):
        # The suite makes several templates of one file (a batch of N); the portal refuses that.
        template = services.template_upload(team=team or cast.acme, user=user or cast.alice,
                                            uploaded_file=upload_of(path or media_dir / name), name=title or Path(name).stem,
                                            allow_duplicate=allow_duplicate)
        if warm and path is None:
            npz, mtime_ns = prep_cache(name)
            os.utime(template.file.path, ns=(mtime_ns, mtime_ns))
            shutil.copy(npz, cache_path(template.file.path))
        return template

    return make


@pytest.fixture
def make_job(cast, short_audio):
    """A job of `templates` on the folder's `short_audio` fixture (or `audio`)."""
    from testutil import upload_of

    from jobs import services

    def make(templates, *, team=None, user=None, priority="default", audio=None, title="", webhook_url=""):
        return services.job_create(team=team or cast.acme, user=user or cast.alice, audio_file=upload_of(audio or short_audio),
                                   template_ids=[t.pk for t in templates], priority=priority, title=title,
                                   webhook_url=webhook_url)

    return make


@pytest.fixture
def run_worker(redis_conn):
    """A real RQ render worker in this process, in burst mode (the engine loads once per session)."""
    import django_rq

    from jobs.worker import RenderWorker

    def run(queues=("high", "default", "low"), *, max_jobs=None, with_scheduler=True):
        qs = [django_rq.get_queue(q) for q in queues]
        worker = RenderWorker(qs, connection=qs[0].connection, watchdog=False)
        worker.work(burst=True, max_jobs=max_jobs, with_scheduler=with_scheduler)
        return worker

    return run


@pytest.fixture
def make_finished_job(settings, media_dir):
    """make_finished_job(team, n=2, title=...) -> Job with n done renders whose outputs are copies
    of a real video under MEDIA_ROOT (and a template with a real poster)."""
    import shutil
    import uuid

    from django.utils import timezone

    from jobs.models import Job, Render, Template

    def make(team, *, n: int = 2, title: str = "Launch video", statuses=None):
        media_root = Path(settings.MEDIA_ROOT)
        job = Job.objects.create(team=team, title=title, status=Job.Status.DONE, audio="x/audio.wav",
                                 audio_filename="speech.wav", audio_duration=2.0, finished=timezone.now())
        for i in range(n):
            status = (statuses or ["done"] * n)[i]
            template = Template(team=team, name=f"Presenter {i + 1}")
            template.file.name = f"teams/{team.pk}/templates/{template.id}/source.mp4"
            template.poster.name = f"teams/{team.pk}/templates/{template.id}/poster.jpg"
            (media_root / template.poster.name).parent.mkdir(parents=True, exist_ok=True)
            (media_root / template.poster.name).write_bytes(b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9")
            template.save()
            r = Render(job=job, team=team, template=template, template_name=template.name, status=status)
            if status == "done":
                r.output.name = f"teams/{team.pk}/jobs/{job.id}/renders/{uuid.uuid4()}.mp4"
                out = media_root / r.output.name
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(media_dir / f"face_square_{i % 3 + 1}.mp4", out)
                r.output_size_bytes = out.stat().st_size
                r.progress, r.finished = 1.0, timezone.now()
            r.save()
        return job

    return make
