"""The batch flow on real Redis, real RQ workers and the real engine on ../shared/media."""
from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from django.urls import reverse
from testutil import probe, upload_of

from accounts.models import UsageEntry
from jobs import services
from jobs.models import Job, Render

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _usage(team, kind=UsageEntry.RENDER_SECONDS):
    from django.db.models import Sum

    return float(UsageEntry.objects.filter(team=team, kind=kind).aggregate(s=Sum("amount"))["s"] or 0)


def test_batch_of_three_with_one_broken_template(cast, make_template, make_job, run_worker, client, redis_conn):
    good = [make_template("face_square_1.mp4", title="Anna"), make_template("face_square_3.mp4", title="Anna")]
    broken = make_template("face_square_2.mp4", title="Broken", warm=False)
    data = Path(broken.file.path).read_bytes()
    Path(broken.file.path).write_bytes(data[:2048])  # damaged on disk after the upload
    job = make_job([*good, broken], title="Launch")
    assert job.renders.count() == 3
    reserved = _usage(cast.acme)
    assert reserved == pytest.approx(3 * job.audio_duration, abs=0.01)

    run_worker()

    job.refresh_from_db()
    renders = {r.template_name: r for r in job.renders.all()}
    done = [r for r in job.renders.all() if r.status == "done"]
    failed = job.renders.get(template_name="Broken")
    assert job.status == Job.Status.PARTIAL and len(done) == 2
    assert failed.status == "failed" and failed.error_code == "undecodable_media" and failed.error_message
    assert failed.attempts == 1  # bad input is never retried
    for r in done:
        info = probe(r.output.path)
        assert info.has_video and info.has_audio and info.duration == pytest.approx(job.audio_duration, abs=0.2)
        assert r.output.name.startswith(f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/")
        assert set(r.quality) == {"face_fraction", "sync_score", "sync_lag", "sync_z"} and r.quality["face_fraction"] > 0.5
        assert r.expires_at and r.finished and r.attempts == 1
        assert not list(Path(r.output.path).parent.glob("*.tmp*"))
    # Settled: actual output seconds for the two done, nothing for the failed one.
    assert _usage(cast.acme) == pytest.approx(sum(r.output_duration for r in done), abs=0.01)
    assert renders["Broken"].pk == failed.pk

    client.force_login(cast.vera)  # a viewer reads everything
    page = client.get(reverse("job_detail", args=[job.pk]))
    assert page.status_code == 200 and b"Launch" in page.content
    assert b"render_retry" not in page.content and reverse("render_retry", args=[failed.pk]).encode() not in page.content
    log = client.get(reverse("render_log", args=[failed.pk]))
    assert log.status_code == 200 and log["Content-Type"] == "text/plain; charset=utf-8"
    assert b"undecodable_media" in b"".join(log.streaming_content)
    archive = client.get(reverse("job_zip", args=[job.pk]))
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    body = b"".join(archive.streaming_content)
    assert int(archive["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert sorted(z.namelist()) == ["Anna (2).mp4", "Anna.mp4"]
        assert z.read("Anna.mp4")[4:8] == b"ftyp"

    client.force_login(cast.charlie)  # another team: not found, everywhere
    for name, pk in (("job_detail", job.pk), ("job_zip", job.pk), ("render_video", done[0].pk),
                     ("render_download", done[0].pk), ("render_log", failed.pk)):
        assert client.get(reverse(name, args=[pk])).status_code == 404, name
    for name in ("render_retry", "render_cancel"):
        assert client.post(reverse(name, args=[failed.pk])).status_code == 404
    assert client.post(reverse("job_cancel", args=[job.pk])).status_code == 404

    # Retry of the failed render from the portal, after fixing the file.
    Path(broken.file.path).write_bytes(data)
    client.force_login(cast.bob)
    assert client.post(reverse("render_retry", args=[failed.pk])).status_code == 302
    failed.refresh_from_db()
    assert failed.status == "queued" and failed.attempts == 0 and not failed.error_message
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    run_worker()
    failed.refresh_from_db()
    job.refresh_from_db()
    assert failed.status == "done" and job.status == Job.Status.DONE


def test_job_create_checks(cast, make_template, make_job, silent_audio, media_dir, settings, redis_conn):
    template = make_template("face_square_3.mp4")
    other = make_template("face_square_3.mp4", team=cast.globex, user=cast.charlie)
    with pytest.raises(ValidationError, match="not found"):
        make_job([template, other])
    with pytest.raises(ValidationError, match="silent"):
        make_job([template], audio=silent_audio)
    with pytest.raises(PermissionDenied):
        make_job([template], user=cast.vera)
    cast.acme.priority_ceiling = "default"
    cast.acme.save()
    with pytest.raises(ValidationError, match="priority"):
        make_job([template], priority="high")
    cast.acme.audio_max_seconds = 1.0
    cast.acme.save()
    with pytest.raises(ValidationError, match="limit"):
        make_job([template])
    text = Path(settings.MEDIA_ROOT).parent / "notes.wav"
    text.write_text("hello" * 100)
    with pytest.raises(ValidationError, match="not audio"):
        services.job_create(team=cast.acme, user=cast.alice, audio_file=upload_of(text), template_ids=[template.pk])
    assert not Job.objects.exists() and not Render.objects.exists()
    jobs_dir = Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}/jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())


def test_priority_and_fair_share(cast, make_template, make_job, run_worker, rq_queue_ids, redis_conn):
    """Cap 2 for acme: its 3-video batch puts 2 in RQ and keeps 1 waiting; globex's small batch
    is not stuck behind it; a high-priority job is served before queued default ones."""
    cast.acme.max_concurrent_renders = 2
    cast.acme.save()
    t = make_template("face_square_3.mp4")
    big = make_job([t, t, t][:1] + [make_template("face_square_3.mp4"), make_template("face_square_3.mp4")], title="big")
    small = make_job([make_template("face_square_3.mp4", team=cast.globex, user=cast.charlie)], team=cast.globex, user=cast.charlie)
    waiting = big.renders.filter(enqueued_at__isnull=True)
    assert waiting.count() == 1 and big.renders.exclude(rq_job_id="").count() == 2
    assert len(rq_queue_ids("default")) == 3  # 2 of acme + 1 of globex: nobody waits behind acme's third
    assert small.renders.get().rq_job_id in rq_queue_ids("default")

    cast.acme.max_concurrent_renders = 3
    cast.acme.save()
    urgent = make_job([t], priority="high", title="urgent")
    assert rq_queue_ids("high") == [urgent.renders.get().rq_job_id]

    run_worker(max_jobs=1)
    assert urgent.renders.get().status == "done"
    assert not big.renders.filter(status="done").exists()

    # A finished render frees a slot: acme's waiting render is handed to RQ now.
    cast.acme.max_concurrent_renders = 2
    cast.acme.save()
    run_worker(max_jobs=1)
    assert big.renders.filter(status="done").count() == 1
    assert big.renders.filter(enqueued_at__isnull=True).count() == 0


def test_cancel_queued_and_running(cast, make_template, make_job, run_worker, rq_queue_ids, redis_conn, media_dir):
    cast.acme.max_concurrent_renders = 1
    cast.acme.save()
    t1, t2 = make_template("face_square_3.mp4"), make_template("face_square_1.mp4")
    job = make_job([t1, t2], audio=media_dir / "speech_en_1.wav")
    in_rq, waiting = job.renders.exclude(rq_job_id=""), job.renders.filter(rq_job_id="")
    assert in_rq.count() == 1 and waiting.count() == 1
    w = waiting.get()
    services.render_cancel(render=w, user=cast.bob)
    w.refresh_from_db()
    assert w.status == "cancelled"

    first = in_rq.get()
    watcher_saw = {}

    def cancel_when_rendering():
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                r = Render.objects.get(pk=first.pk)
                if r.status == "rendering":
                    watcher_saw["progress"] = r.progress
                    services.render_cancel(render=r, user=cast.bob)
                    return
                time.sleep(0.05)
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=cancel_when_rendering)
    thread.start()
    started = time.monotonic()
    run_worker()
    thread.join()
    first.refresh_from_db()
    job.refresh_from_db()
    assert watcher_saw and first.status == "cancelled" and not first.output
    assert not list(Path(first.log_path and (Path(first.job.audio.path).parent / "renders")).glob("*.mp4"))
    assert job.status == Job.Status.CANCELLED
    assert rq_queue_ids("default") == []
    assert _usage(cast.acme) == pytest.approx(0, abs=0.01)  # everything refunded
    assert time.monotonic() - started < 60


def test_infrastructure_error_is_retried_then_fails(cast, make_template, make_job, run_worker, settings, redis_conn, monkeypatch):
    """An error that is not the user's file goes back to RQ (Retry) up to RENDER_MAX_ATTEMPTS."""
    settings.RENDER_MAX_ATTEMPTS = 2
    settings.RENDER_RETRY_INTERVALS = [0]
    template = make_template("face_square_3.mp4")
    job = make_job([template])
    render = job.renders.get()
    # The audio cache folder is not writable: an infrastructure problem, not bad input.
    cache = Path(settings.MEDIA_ROOT) / "cache" / "audio"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where a folder should be")
    run_worker()
    render.refresh_from_db()
    assert render.status == "failed" and render.attempts == 2 and render.error_code == "internal"
    assert "server problem" in render.error_message
    log = (Path(settings.MEDIA_ROOT) / render.log_path).read_text()
    assert "attempt 1 failed" in log and "attempt 2 failed" in log
    cache.unlink()
    services.render_retry(render=render, user=cast.alice)
    run_worker()
    render.refresh_from_db()
    assert render.status == "done" and render.attempts == 1


def test_audio_is_analysed_once_per_batch(cast, make_template, make_job, run_worker, redis_conn):
    templates = [make_template("face_square_3.mp4") for _ in range(3)]
    job = make_job(templates)
    run_worker()
    assert job.renders.filter(status="done").count() == 3
    assert int(redis_conn.get(services.AUDIO_ANALYSES_KEY)) == 1
    assert services.audio_analysis_path(job.audio_sha256).is_file()
