"""Fixtures of the reliability and security proof: acme's full set of objects (with real media),
a corpus of broken media made from ../shared/media, and real workers (in process and as
subprocesses). Nothing generated here is committed: it all lives under pytest's tmp folders."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.append(str(REPO / "tests" / "jobs"))  # jobs_testutil: cut_audio, upload_of

from jobs_testutil import cut_audio, upload_of  # noqa: E402

FIRST_BYTES = 64 * 1024  # the matrix looks for this much of each of acme's files in every response


# --- media ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def short_audio(media_dir, tmp_path_factory) -> Path:
    """1.5 s of real English speech: keeps each render to a few seconds on CPU."""
    return cut_audio(media_dir / "speech_en_1.wav", tmp_path_factory.mktemp("rel-audio") / "speech.wav", 1.5)


@pytest.fixture(scope="session")
def prep_cache(media_dir, tmp_path_factory):
    """Face tracking of a shared template done once per session: {name: (npz, mtime_ns)}."""
    from lipsync.prepare import cache_path, prepare_template

    folder = tmp_path_factory.mktemp("rel-prep")
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
    from jobs import services
    from lipsync.prepare import cache_path

    def make(name="face_square_1.mp4", *, path=None, team=None, user=None, warm=True, title=None):
        template = services.template_upload(team=team or cast.acme, user=user or cast.alice,
                                            uploaded_file=upload_of(path or media_dir / name), name=title or Path(name).stem)
        if warm and path is None:
            npz, mtime_ns = prep_cache(name)
            os.utime(template.file.path, ns=(mtime_ns, mtime_ns))
            shutil.copy(npz, cache_path(template.file.path))
        return template

    return make


@pytest.fixture
def make_job(cast, short_audio):
    from jobs import services

    def make(templates, *, team=None, user=None, audio=None, title="", webhook_url=""):
        return services.job_create(team=team or cast.acme, user=user or cast.alice, audio_file=upload_of(audio or short_audio),
                                   template_ids=[t.pk for t in templates], title=title, webhook_url=webhook_url)

    return make


@pytest.fixture
def run_worker(redis_conn):
    """A real RQ render worker in this process, in burst mode."""
    import django_rq

    from jobs.worker import RenderWorker

    def run(queues=("high", "default", "low"), *, max_jobs=None):
        qs = [django_rq.get_queue(q) for q in queues]
        worker = RenderWorker(qs, connection=qs[0].connection, watchdog=False)
        worker.work(burst=True, max_jobs=max_jobs, with_scheduler=False)
        return worker

    return run


@pytest.fixture
def make_user(db):
    from accounts.models import User
    from allauth.account.models import EmailAddress

    def make(email: str):
        user = User.objects.create_user(email=email, password="correct-horse-battery-9", display_name=email.split("@")[0])
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    return make


# --- acme's objects ---------------------------------------------------------------------------

@pytest.fixture
def acme_world(cast, make_template, make_job, media_dir, settings):
    """Every kind of object acme owns, with real files: a template (video + poster), a job whose
    audio is real, a done render with a real output and a log, a failed and a queued render, share
    links (job, render, revoked, password), an API key and a revoked one, a pending invitation,
    a webhook delivery. `files` lists every file of acme under MEDIA_ROOT."""
    from django.utils import timezone

    from accounts import services as account_services
    from accounts.api_keys import apikey_create, apikey_revoke
    from accounts.models import Membership
    from jobs import sharing
    from jobs.models import Render, WebhookDelivery

    template = make_template("face_square_1.mp4", warm=False)
    template2 = make_template("face_square_2.mp4", warm=False)
    template3 = make_template("face_square_3.mp4", warm=False)
    job = make_job([template, template2, template3], title="Acme launch")
    done, failed, queued = job.renders.order_by("template_name")
    out = Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/{done.pk}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(media_dir / "face_square_3.mp4", out)
    log_rel = f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/{done.pk}.log"
    (Path(settings.MEDIA_ROOT) / log_rel).write_text("acme-secret-log-line render attempt 1\n")
    now = timezone.now()
    Render.objects.filter(pk=done.pk).update(status="done", progress=1.0, output=str(out.relative_to(settings.MEDIA_ROOT)),
                                             output_size_bytes=out.stat().st_size, log_path=log_rel, finished=now)
    Render.objects.filter(pk=failed.pk).update(status="failed", error_code="internal", error_message="x", finished=now,
                                               log_path=log_rel)
    done.refresh_from_db()
    failed.refresh_from_db()
    job_share, job_token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, job=job)
    render_share, render_token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, render=done)
    revoked_share, revoked_token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, render=done)
    sharing.sharelink_revoke(link=revoked_share)
    pw_share, pw_token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, render=done, password="acme-pw-9")
    key, key_plain = apikey_create(team=cast.acme, name="acme ci", created_by=cast.alice)
    revoked_key, revoked_plain = apikey_create(team=cast.acme, name="acme old", created_by=cast.alice)
    apikey_revoke(key=revoked_key)
    invitation, invitation_token = account_services.invitation_create(actor=cast.alice, team=cast.acme,
                                                                       email="newhire@example.com", role="member")
    delivery = WebhookDelivery.objects.create(team=cast.acme, job=job, event="render.done",
                                              url="https://hooks.acme.example/mouthpiece", payload={"secret": "acme"})
    media_root = Path(settings.MEDIA_ROOT)
    audio_bytes = Path(job.audio.path).read_bytes()

    def audio_upload():
        from django.core.files.uploadedfile import SimpleUploadedFile

        return SimpleUploadedFile("speech.wav", audio_bytes, content_type="audio/wav")

    files = sorted(p for p in (media_root / "teams" / str(cast.acme.pk)).rglob("*") if p.is_file())
    return SimpleNamespace(
        template=template, template2=template2, job=job, done=done, failed=failed, queued=queued,
        job_share=job_share, job_token=job_token, render_share=render_share, render_token=render_token,
        revoked_share=revoked_share, revoked_token=revoked_token, pw_share=pw_share, pw_token=pw_token,
        key=key, key_plain=key_plain, revoked_key=revoked_key, revoked_plain=revoked_plain,
        invitation=invitation, invitation_token=invitation_token, delivery=delivery,
        bob_membership=Membership.objects.get(team=cast.acme, user=cast.bob),
        audio_upload=audio_upload, files=files, chunks=[p.read_bytes()[:FIRST_BYTES] for p in files],
    )
