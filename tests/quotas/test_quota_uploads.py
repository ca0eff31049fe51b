"""Uploads stop while streaming once they pass the per-file maximum or the storage left,
and leave no temp file behind. Real multipart requests through the test client."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.http import JsonResponse
from django.urls import path

from accounts.quotas import storage_charge
from accounts.upload_handlers import upload_rejection


def _upload_view(request):
    files = {name: f.size for name, f in request.FILES.items()}
    rejection = upload_rejection(request)
    return JsonResponse({
        "files": files,
        "fields": sorted(request.POST.keys()),
        "rejected": rejection.code if rejection else None,
        "message": str(rejection) if rejection else "",
        "received": getattr(request, "upload_bytes_received", 0),
    })


urlpatterns = [path("upload/", _upload_view)]


@pytest.fixture
def upload_client(client, cast, settings, tmp_path):
    settings.ROOT_URLCONF = __name__
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    client.force_login(cast.alice)
    return client


def _post(client, tmp_path, name, nbytes, field="file"):
    src = tmp_path / name
    src.write_bytes(b"x" * nbytes)
    with src.open("rb") as fh:
        response = client.post("/upload/", {"title": "hello", field: fh, "after": "still here"})
    return response.json()


def _temp_files(settings):
    return list(Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir())


def test_file_over_per_file_maximum_stops_early_and_leaves_no_temp_file(upload_client, cast, settings, tmp_path):
    cast.acme.template_max_bytes = 100 * 1024
    cast.acme.save()
    body = 3 * 1024 * 1024
    data = _post(upload_client, tmp_path, "big.mp4", body)
    assert data["rejected"] == "file_too_large"
    assert "100.0 KB" in data["message"]
    assert data["files"] == {}
    # Stopped at the limit: far fewer bytes than the body reached the disk.
    assert data["received"] <= 100 * 1024 and data["received"] < body / 10
    # Fields after the file still arrive (the CSRF token may be anywhere in the form).
    assert "after" in data["fields"] and "title" in data["fields"]
    assert _temp_files(settings) == []


def test_audio_field_uses_audio_maximum(upload_client, cast, settings, tmp_path):
    settings.AUDIO_MAX_BYTES = 50 * 1024
    data = _post(upload_client, tmp_path, "speech.wav", 60 * 1024, field="audio")
    assert data["rejected"] == "file_too_large"
    data = _post(upload_client, tmp_path, "speech.wav", 40 * 1024, field="audio")
    assert data["rejected"] is None and data["files"] == {"audio": 40 * 1024}


def test_upload_over_storage_left_is_refused(upload_client, cast, settings, tmp_path):
    cast.acme.storage_bytes_limit = 1024 * 1024
    cast.acme.save()
    storage_charge(team=cast.acme, nbytes=900 * 1024, reason="template_upload")
    data = _post(upload_client, tmp_path, "clip.mp4", 200 * 1024)
    assert data["rejected"] == "storage"
    assert "900.0 KB of 1.0 MB" in data["message"]
    assert data["received"] <= 124 * 1024
    assert _temp_files(settings) == []


def test_body_far_over_storage_left_writes_nothing(upload_client, cast, settings, tmp_path):
    cast.acme.storage_bytes_limit = 64 * 1024
    cast.acme.save()
    data = _post(upload_client, tmp_path, "clip.mp4", 2 * 1024 * 1024)
    assert data["rejected"] == "storage"
    assert data["received"] == 0
    assert _temp_files(settings) == []


def test_upload_within_limits_is_kept(upload_client, cast, settings, tmp_path):
    data = _post(upload_client, tmp_path, "ok.mp4", 300 * 1024)
    assert data["rejected"] is None and data["files"] == {"file": 300 * 1024}
    assert data["received"] == 300 * 1024


def test_other_teams_usage_does_not_count(upload_client, cast, settings, tmp_path):
    cast.globex.storage_bytes_limit = 1
    cast.globex.save()
    cast.acme.storage_bytes_limit = 10 * 1024 * 1024
    cast.acme.save()
    data = _post(upload_client, tmp_path, "ok.mp4", 100 * 1024)
    assert data["rejected"] is None
