"""Retention purge, orphan and temp sweeps, dry run, and the management command."""
from __future__ import annotations

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from testutil import write_media

from accounts.models import UsageEntry
from accounts.quotas import storage_bytes_used
from jobs.maintenance import maintenance_run, outputs_expired_purge
from jobs.models import Render


def _media(name):
    return Path(settings.MEDIA_ROOT) / name


@pytest.fixture
def retention_world(cast, make_render, settings):
    settings.PLAN_RETENTION_DAYS = 30
    cast.acme.retention_days = 7
    cast.acme.save()
    return {
        "old": make_render(cast.acme, finished_days_ago=8, output_bytes=4000),
        "fresh": make_render(cast.acme, finished_days_ago=2, output_bytes=3000),
        # Globex keeps outputs for 30 days: 8 days old is not expired there.
        "globex": make_render(cast.globex, finished_days_ago=8, output_bytes=2000),
        # Written before expires_at existed: the purge computes finished + retention.
        "legacy": make_render(cast.acme, finished_days_ago=10, output_bytes=1000, expires=False),
    }


def test_retention_deletes_only_expired_outputs_and_frees_storage(retention_world, cast, django_capture_on_commit_callbacks):
    w = retention_world
    assert storage_bytes_used(team=cast.acme) == 8000
    with django_capture_on_commit_callbacks(execute=True):
        report = outputs_expired_purge()
    assert sorted(report.expired_renders) == sorted([str(w["old"].pk), str(w["legacy"].pk)])
    assert report.freed_bytes == 5000

    old = Render.objects.get(pk=w["old"].pk)
    assert old.status == Render.Status.EXPIRED and not old.output
    assert not _media(w["old"].output.name).exists()
    assert _media(w["old"].log_path).exists()  # the log stays with the row
    for key in ("fresh", "globex"):
        r = Render.objects.get(pk=w[key].pk)
        assert r.status == "done" and _media(r.output.name).exists()

    assert storage_bytes_used(team=cast.acme) == 3000
    cast.acme.refresh_from_db()
    assert cast.acme.storage_bytes_used == 3000
    assert storage_bytes_used(team=cast.globex) == 2000
    rows = UsageEntry.objects.filter(team=cast.acme, reason="retention")
    assert sorted(rows.values_list("amount", flat=True)) == [-4000, -1000]

    # Running again changes nothing.
    assert outputs_expired_purge().expired_renders == []
    assert storage_bytes_used(team=cast.acme) == 3000


def test_dry_run_deletes_nothing(retention_world, cast, settings, tmp_path, django_capture_on_commit_callbacks):
    orphan = write_media(f"teams/{cast.acme.pk}/templates/00000000-0000-4000-8000-000000000000/source.mp4", age_seconds=7200)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "up")
    stale_upload = Path(settings.FILE_UPLOAD_TEMP_DIR) / "tmpabc.upload.mp4"
    stale_upload.parent.mkdir()
    stale_upload.write_bytes(b"x")
    os.utime(stale_upload, (time.time() - 7200,) * 2)
    before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*"))
    ledger = UsageEntry.objects.count()

    out = StringIO()
    call_command("maintenance", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"would delete expired output of render {retention_world['old'].pk}" in text
    assert "would delete orphan" in text and str(orphan.relative_to(settings.MEDIA_ROOT)) in text
    assert str(stale_upload) in text

    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*")) == before
    assert stale_upload.exists()
    assert UsageEntry.objects.count() == ledger
    assert Render.objects.filter(status="expired").count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        call_command("maintenance", stdout=StringIO())
    assert not retention_world["old"].output.storage.exists(retention_world["old"].output.name)
    assert not orphan.exists() and not stale_upload.exists()
    assert Render.objects.filter(status="expired").count() == 2


def test_orphan_sweep_recognises_every_file_kind(cast, make_render, settings):
    render = make_render(cast.acme)
    tpl, job = render.template, render.job
    team_dir = f"teams/{cast.acme.pk}"
    old = 7200
    keep = [
        write_media(f"{team_dir}/templates/{tpl.pk}/poster.jpg", age_seconds=old),
        write_media(f"{team_dir}/templates/{tpl.pk}/source.mp4.lipsync.npz", age_seconds=old),  # prep cache
        write_media(f"{team_dir}/jobs/{job.pk}/audio.analysis.npz", age_seconds=old),
        write_media(f"{team_dir}/jobs/{job.pk}/renders/{render.pk}.mp4", age_seconds=old),
        write_media(f"{team_dir}/jobs/{job.pk}/renders/{render.pk}.log", age_seconds=old),
        # Young files may belong to an upload whose row is not committed yet.
        write_media(f"{team_dir}/templates/11111111-1111-4111-8111-111111111111/source.mp4"),
        write_media(f"{team_dir}/jobs/{job.pk}/renders/.{render.pk}.ab12cd34.tmp.mp4"),
        write_media(f"cache/audio/{'a' * 64}.npz", age_seconds=old),  # the job's audio analysis
    ]
    job.audio_sha256 = "a" * 64
    job.save()
    gone_id = "22222222-2222-4222-8222-222222222222"
    orphans = [
        write_media(f"{team_dir}/templates/{gone_id}/source.mp4", age_seconds=old),          # deleted template
        write_media(f"{team_dir}/templates/{gone_id}/source.mp4.lipsync.npz", age_seconds=old),
        write_media(f"{team_dir}/jobs/{job.pk}/renders/{gone_id}.mp4", age_seconds=old),    # deleted render
        write_media(f"teams/999999/jobs/{gone_id}/audio.wav", age_seconds=old),              # deleted team
        write_media(f"cache/audio/{'b' * 64}.npz", age_seconds=old),                          # no job uses it
    ]
    temps = [
        write_media(f"{team_dir}/jobs/{job.pk}/renders/.out.9f9f9f9f.tmp.mp4", age_seconds=old),
        write_media(f"{team_dir}/templates/{tpl.pk}/.source.mp4.lipsync.npz.1234abcd.tmp.npz", age_seconds=old),
        write_media(f"{team_dir}/jobs/{job.pk}/upload.partial", age_seconds=old),
        write_media("cache/audio/.tmp-xyz.npz", age_seconds=old),
    ]
    report = maintenance_run()
    for p in keep:
        assert p.exists(), p
    for p in orphans + temps:
        assert not p.exists(), p
    assert not _media(f"{team_dir}/templates/{gone_id}").exists()  # emptied folder removed
    # The referenced files of live rows stay.
    for name in (tpl.file.name, job.audio.name, render.output.name):
        assert _media(name).exists()
    assert len(report.orphan_files) == 5


def test_enqueued_maintenance_runs_on_a_real_worker(cast, make_render, redis_conn, settings):
    import django_rq
    from rq import SimpleWorker

    from jobs.maintenance import maintenance_enqueue

    settings.PLAN_RETENTION_DAYS = 1
    render = make_render(cast.acme, finished_days_ago=3)
    job = maintenance_enqueue()
    queue = django_rq.get_queue("maintenance")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    job.refresh()
    assert job.is_finished, job.exc_info
    assert Render.objects.get(pk=render.pk).status == "expired"
