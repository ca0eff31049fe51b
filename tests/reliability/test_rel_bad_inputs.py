"""The bad-input corpus (rel_corpus.py) pushed through every door: template uploads through the
portal and the API, batch audio through the API and the portal, and media that only fail at
render time through a real RQ worker. Each gets a clear message, leaves no file behind, and the
worker goes on with the next render."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import rel_corpus
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rel_util import stray_files

pytestmark = pytest.mark.django_db

# What each case must come to: "reject" (a 400 with a message) or "accept" (stored safely).
VIDEO_EXPECT = {
    "zero-byte": "reject", "truncated-10": "reject", "truncated-50": "reject", "truncated-90": "reject",
    "wrong-extension": "reject", "text-file": "reject", "jpeg-renamed": "reject", "audio-only-mp4": "reject",
    "declares-3-hours": "reject", "8000x8000": "reject", "path-traversal-name": "accept", "unicode-name": "accept",
}
AUDIO_EXPECT = {
    "zero-byte": "reject", "truncated-10": "accept", "truncated-50": "accept", "text-file": "reject",
    "jpeg-renamed": "reject", "video-without-audio": "reject", "wrong-extension": "reject", "8-khz": "accept",
    "96-khz": "accept", "silent": "reject", "declares-3-hours": "reject", "path-traversal-name": "accept",
    "unicode-name": "accept", "no-samples": "reject",
}
INTERNAL_WORDS = ("Traceback", "Exception", "Error:", "server problem", "errno", "ffmpeg", "av.error")


@pytest.fixture(scope="session")
def corpus(media_dir, tmp_path_factory):
    return rel_corpus.build(media_dir, tmp_path_factory.mktemp("bad-corpus"))


def _upload(case: dict) -> SimpleUploadedFile:
    return SimpleUploadedFile(case["name"], Path(case["path"]).read_bytes(), content_type="application/octet-stream")


def _temp_files() -> set[Path]:
    return {p for p in Path(django_settings.FILE_UPLOAD_TEMP_DIR).rglob("*") if p.is_file()}


def _assert_clear(messages: list[str], case: str):
    assert messages and all(m.strip() for m in messages), f"{case}: no message"
    text = " ".join(messages)
    assert not any(w in text for w in INTERNAL_WORDS), f"{case}: internal detail leaked to the user: {text}"


def _assert_nothing_left(media_root: Path, before_tmp: set[Path], case: str):
    left = stray_files(media_root)
    assert not left, f"{case}: files left behind: {left}"
    new_tmp = _temp_files() - before_tmp
    assert not new_tmp, f"{case}: upload temp files left behind: {new_tmp}"


@pytest.fixture
def api_key(cast):
    from accounts.api_keys import apikey_create

    return apikey_create(team=cast.acme, name="bad inputs")[1]


@pytest.fixture
def stub_template(cast, media_dir, settings):
    """A template row with a real file (no probe/poster: the audio is what is under test)."""
    from jobs.models import Template

    template = Template(team=cast.acme, name="stub", width=700, height=700, duration=6.0, fps=22, prep_status="ready")
    template.file.name = f"teams/{cast.acme.pk}/templates/{template.id}/source.mp4"
    dest = Path(settings.MEDIA_ROOT) / template.file.name
    dest.parent.mkdir(parents=True)
    shutil.copyfile(media_dir / "face_square_1.mp4", dest)
    template.save()
    return template


@pytest.mark.parametrize("case", sorted(VIDEO_EXPECT))
def test_template_upload_portal(case, corpus, cast, settings):
    from jobs.models import Template

    client = Client()
    client.force_login(cast.alice)
    before = _temp_files()
    started = time.monotonic()
    response = client.post(reverse("template_upload"), {"file": _upload(corpus["video"][case]), "name": ""},
                           headers={"X-Requested-With": "XMLHttpRequest"})
    assert time.monotonic() - started < 20, f"{case}: the upload took too long"
    body = response.json()
    if VIDEO_EXPECT[case] == "reject":
        assert response.status_code == 400 and not Template.objects.exists(), (case, body)
        _assert_clear(body["errors"], case)
    else:
        assert response.status_code == 201, (case, body)
        template = Template.objects.get()
        path = Path(template.file.path).resolve()
        team_dir = (Path(settings.MEDIA_ROOT) / "teams" / str(cast.acme.pk) / "templates").resolve()
        assert path.is_relative_to(team_dir) and path.name == "source.mp4"
        assert template.original_filename == Path(corpus["video"][case]["name"]).name
        assert template.width == 700
    _assert_nothing_left(Path(settings.MEDIA_ROOT), before, case)


@pytest.mark.parametrize("case", ["zero-byte", "text-file", "truncated-50", "8000x8000", "path-traversal-name"])
def test_template_upload_api(case, corpus, cast, api_key, settings):
    client = Client(headers={"Authorization": f"Bearer {api_key}"})
    before = _temp_files()
    response = client.post(reverse("api_template_list"), {"file": _upload(corpus["video"][case])})
    if VIDEO_EXPECT[case] == "reject":
        assert response.status_code in (400, 413), (case, response.content)
        error = response.json()["error"]
        assert error["code"] and error["code"] != "internal"
        _assert_clear([error["message"]], case)
    else:
        assert response.status_code == 201, response.content
    _assert_nothing_left(Path(settings.MEDIA_ROOT), before, case)


@pytest.mark.parametrize("case", sorted(AUDIO_EXPECT))
def test_job_audio_api(case, corpus, cast, api_key, stub_template, settings, django_capture_on_commit_callbacks, redis_conn):
    from jobs.models import Job

    client = Client(headers={"Authorization": f"Bearer {api_key}"})
    before = _temp_files()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("api_job_list"), {"audio": _upload(corpus["audio"][case]), "template_ids": [str(stub_template.pk)]})
    if AUDIO_EXPECT[case] == "reject":
        assert response.status_code in (400, 413), (case, response.content)
        _assert_clear([response.json()["error"]["message"]], case)
        assert not Job.objects.exists()
    else:
        assert response.status_code == 201, (case, response.content)
        job = Job.objects.get()
        path = Path(job.audio.path).resolve()
        assert path.is_relative_to((Path(settings.MEDIA_ROOT) / "teams" / str(cast.acme.pk) / "jobs").resolve())
        assert job.audio_duration > 0 and job.audio_info["sample_rate"]
    _assert_nothing_left(Path(settings.MEDIA_ROOT), before, case)


@pytest.mark.parametrize("case", ["zero-byte", "silent", "no-samples", "jpeg-renamed", "declares-3-hours", "unicode-name"])
def test_job_audio_portal(case, corpus, cast, stub_template, settings, django_capture_on_commit_callbacks, redis_conn):
    from jobs.models import Job

    client = Client()
    client.force_login(cast.alice)
    before = _temp_files()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("job_new"), {"audio": _upload(corpus["audio"][case]), "templates": [str(stub_template.pk)],
                                                    "priority": "default", "title": case}, headers={"X-Requested-With": "XMLHttpRequest"})
    if AUDIO_EXPECT[case] == "reject":
        assert response.status_code == 400, (case, response.content)
        _assert_clear(response.json()["errors"], case)
        assert not Job.objects.exists()
    else:
        assert response.status_code == 201, (case, response.content)
    _assert_nothing_left(Path(settings.MEDIA_ROOT), before, case)


@pytest.mark.slow
def test_render_time_failures_leave_the_worker_and_the_batch_healthy(corpus, cast, make_template, make_job, run_worker,
                                                                     settings, django_capture_on_commit_callbacks):
    """A batch mixing a face-less video and a one-frame video with a good template, then a
    second batch: one burst worker runs everything; the bad renders fail with a clear message,
    every good render finishes, and no output or temp file is left for the failed ones."""
    from jobs.models import Render

    with django_capture_on_commit_callbacks(execute=True):
        noise = make_template("noise.mp4", path=corpus["render"]["no-face-noise"]["path"], warm=False)
        one = make_template("one.mp4", path=corpus["render"]["one-frame"]["path"], warm=False)
        good = make_template("face_square_1.mp4")
        first = make_job([noise, one, good], title="mixed")
        second = make_job([good], title="after")
    run_worker()
    renders = {r.template_name: r for r in Render.objects.filter(job=first)}
    bad = renders["noise"]
    assert bad.status == "failed" and bad.error_code == "no_face", (bad.status, bad.error_code, bad.error_message)
    _assert_clear([bad.error_message], "no-face")
    assert renders["face_square_1"].status == "done"
    assert renders["one"].status in ("done", "failed"), renders["one"].status
    if renders["one"].status == "failed":
        _assert_clear([renders["one"].error_message], "one-frame")
    assert Render.objects.get(job=second).status == "done"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "partial" and second.status == "done"
    out_dir = Path(settings.MEDIA_ROOT) / f"teams/{cast.acme.pk}/jobs/{first.pk}/renders"
    outputs = sorted(p.name for p in out_dir.iterdir() if not p.name.endswith(".log"))
    expected = sorted(f"{r.pk}.mp4" for r in renders.values() if r.status == "done")
    assert outputs == expected  # nothing partial, nothing temporary, nothing for the failed render


def test_asgi_request_body_spools_to_disk(settings):
    """Under an ASGI server, Django's ASGIHandler first copies the whole request body into a
    SpooledTemporaryFile(max_size=FILE_UPLOAD_MAX_MEMORY_SIZE). A max_size of 0 means "never roll
    over": a 1 GiB upload then sat in the web process's memory (bench/load.py measured 13 GiB of
    RSS). The body must reach the disk after a small in-memory head."""
    from asgiref.sync import async_to_sync
    from django.core.handlers.asgi import ASGIHandler

    chunk = b"x" * (256 * 1024)
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(8)]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive():
        return messages.pop(0)

    body = async_to_sync(ASGIHandler().read_body)(receive)
    try:
        assert body._rolled, "the ASGI request body stayed in memory (FILE_UPLOAD_MAX_MEMORY_SIZE must be > 0)"
        assert body.read() == chunk * 8
    finally:
        body.close()
