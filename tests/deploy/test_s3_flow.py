"""The jobs flow with media in an S3-compatible bucket (moto's server standing in for MinIO):
uploads go to the bucket, a real RQ burst worker renders with the real engine from its local
cache and stores the output and the log in the bucket, nothing lands under MEDIA_ROOT/teams,
and downloads are presigned redirects given only after the access check."""
from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from testutil import cut_audio, probe, upload_of

from jobs import services
from jobs.models import Job, Render

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BUCKET = "mp-flow"
KEYS = {"access_key": "testing", "secret_key": "testing-secret", "region_name": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        pytest.skip("moto[server] is not installed")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def s3(settings, moto_endpoint, tmp_path):
    """STORAGE_BACKEND=s3 for this test: a fresh bucket, and a worker cache of its own."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id=KEYS["access_key"],
                          aws_secret_access_key=KEYS["secret_key"], region_name=KEYS["region_name"])
    bucket = f"{BUCKET}-{os.getpid()}-{time.monotonic_ns()}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": moto_endpoint, **KEYS, "addressing_style": "path",
                    "signature_version": "s3v4", "default_acl": None, "querystring_auth": True,
                    "querystring_expire": 300, "file_overwrite": False}}}
    settings.MEDIA_CACHE_DIR = tmp_path / "worker-cache"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = ""

    def keys(prefix=""):
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def body(key):
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    client.keys, client.body = keys, body
    return client


@pytest.fixture(scope="module")
def short_audio(media_dir, tmp_path_factory) -> Path:
    return cut_audio(media_dir / "speech_en_1.wav", tmp_path_factory.mktemp("audio") / "speech_2s.wav", 2.0)


def _warm(template, prep_cache, name):
    """The session's face tracking, put where this worker host's prep cache lives: beside the
    local copy of the template (the prep cache stays per worker host)."""
    from config.storage import media_local_path
    from lipsync.prepare import cache_path

    npz, mtime_ns = prep_cache(name)
    local = media_local_path(template.file)
    os.utime(local, ns=(mtime_ns, mtime_ns))
    shutil.copy(npz, cache_path(local))


def _get(url: str):
    """(status, body, headers: case-insensitive) of a GET straight to the bucket."""
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read(), r.headers


def test_render_flow_on_object_storage(s3, settings, cast, media_dir, short_audio, prep_cache, run_worker, client):
    from config.storage import storage_is_remote

    assert storage_is_remote()
    template = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_1.mp4"),
                                        name="Anna")
    assert s3.keys(f"teams/{cast.acme.pk}/templates/{template.pk}/") == sorted([template.file.name, template.poster.name])
    assert template.duration > 0 and template.width > 0  # probed from the local upload before storing
    _warm(template, prep_cache, "face_square_1.mp4")

    job = services.job_create(team=cast.acme, user=cast.alice, audio_file=upload_of(short_audio), template_ids=[template.pk])
    assert s3.body(job.audio.name) == short_audio.read_bytes() and job.audio_duration == pytest.approx(2.0, abs=0.05)

    run_worker(queues=("prep", "high", "default", "low"))

    template.refresh_from_db()
    assert template.prep_status == "ready"
    job.refresh_from_db()
    render = job.renders.get()
    assert job.status == Job.Status.DONE and render.status == Render.Status.DONE, (render.error_code, render.error_message)
    media_root = Path(settings.MEDIA_ROOT)
    assert not (media_root / "teams").exists() or not any(p.is_file() for p in (media_root / "teams").rglob("*"))
    # Output and log are in the bucket under the names the filesystem would use.
    assert render.output.name == f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/{render.pk}.mp4"
    video = s3.body(render.output.name)
    assert len(video) == render.output_size_bytes > 1000
    assert b"done:" in s3.body(render.log_path)
    work = Path(settings.MEDIA_CACHE_DIR) / "work"
    assert not any(p.is_file() for p in work.rglob("*"))  # the worker's scratch copies went to the bucket
    local_copy = Path(settings.MEDIA_CACHE_DIR) / "out.mp4"
    local_copy.write_bytes(video)
    info = probe(local_copy)
    assert info.has_video and info.has_audio and info.duration == pytest.approx(job.audio_duration, abs=0.2)

    # Another team: a 404 before any URL is made.
    client.force_login(cast.charlie)
    assert client.get(reverse("render_download", args=[render.pk])).status_code == 404
    assert client.get(reverse("template_video", args=[template.pk])).status_code == 404

    client.force_login(cast.vera)
    response = client.get(reverse("render_download", args=[render.pk]))
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    assert url.startswith(f"{s3.meta.endpoint_url}/") and "X-Amz-Signature=" in url
    status, data, headers = _get(url)
    assert status == 200 and data == video
    assert headers["Content-Type"] == "video/mp4" and headers["Content-Disposition"].startswith("attachment;")
    # The player's URL is inline; the log is plain text; the poster an image.
    status, _, headers = _get(client.get(reverse("render_video", args=[render.pk]))["Location"])
    assert status == 200 and headers["Content-Disposition"].startswith("inline;")
    status, data, headers = _get(client.get(reverse("render_log", args=[render.pk]))["Location"])
    assert b"done:" in data and headers["Content-Type"] == "text/plain; charset=utf-8"
    status, data, headers = _get(client.get(reverse("template_poster", args=[template.pk]))["Location"])
    assert data[:3] == b"\xff\xd8\xff" and headers["Content-Type"] == "image/jpeg"

    # The zip streams from the bucket.
    response = client.get(reverse("job_zip", args=[job.pk]))
    assert response.status_code == 200
    payload = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(payload)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        assert [zf.read(n) for n in zf.namelist()] == [video]

    # Retention deletes the object through the storage; deleting the template empties its folder.
    from jobs.maintenance import orphan_files_sweep, render_expire

    render_expire(render=render)
    assert render.output.name not in s3.keys()
    assert orphan_files_sweep().orphan_files == []  # a bucket is not walked
    services.template_delete(template=template, user=cast.alice)
    assert s3.keys(f"teams/{cast.acme.pk}/templates/") == []


def test_api_download_redirects_after_access_check(s3, cast, client):
    """The API's download answers a presigned redirect to the owning team's key only."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from accounts.api_keys import apikey_create

    job = Job.objects.create(team=cast.acme, created_by=cast.alice, audio_duration=1.0, status=Job.Status.DONE)
    render = Render.objects.create(job=job, team=cast.acme, template_name="Anna", status=Render.Status.DONE)
    render.output.name = default_storage.save(f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/{render.pk}.mp4",
                                              ContentFile(b"video-bytes"))
    render.save(update_fields=["output"])
    url = reverse("api_render_download", args=[render.pk])
    globex = apikey_create(team=cast.globex, name="globex", created_by=cast.charlie)[1]
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {globex}").status_code == 404
    acme = apikey_create(team=cast.acme, name="acme", created_by=cast.alice)[1]
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {acme}")
    assert response.status_code == 302
    status, data, headers = _get(response["Location"])
    assert data == b"video-bytes" and 'filename="Anna.mp4"' in headers["Content-Disposition"]
