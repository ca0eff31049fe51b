"""Fixtures of the reliability and security proof: acme's full set of objects (with real media),
a corpus of broken media made from ../shared/media, and real workers (in process and as
subprocesses). Nothing generated here is committed: it all lives under pytest's tmp folders."""
from __future__ import annotations

import functools
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from testutil import cut_audio

FIRST_BYTES = 64 * 1024  # the matrix looks for this much of each of acme's files in every response


# --- media ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def short_audio(media_dir, tmp_path_factory) -> Path:
    """1.5 s of real English speech: keeps each render to a few seconds on CPU."""
    return cut_audio(media_dir / "speech_en_1.wav", tmp_path_factory.mktemp("rel-audio") / "speech.wav", 1.5)


@pytest.fixture
def run_worker(run_worker):
    """tests/conftest.py's burst worker without the scheduler: these tests decide themselves when
    a deferred retry runs."""
    return functools.partial(run_worker, with_scheduler=False)


@pytest.fixture
def make_user(db):
    from allauth.account.models import EmailAddress

    from accounts.models import User

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
