"""Every endpoint is scoped to the caller's team; roles gate writes; errors keep one shape."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from jobs.models import Job, Template
from jobs.sharing import sharelink_create


def bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def acme_objects(cast, make_finished_job):
    job = make_finished_job(cast.acme, n=1)
    render = job.renders.get()
    render.log_path = f"teams/{cast.acme.pk}/jobs/{job.pk}/renders/{render.pk}.log"
    render.save()
    link, _ = sharelink_create(team=cast.acme, job=job)
    return {"job": job, "render": render, "template": render.template, "share": link}


def test_other_teams_key_gets_404_on_every_id(cast, acme_objects, globex_key):
    client = bearer(globex_key[1])
    o = acme_objects
    calls = [
        ("get", "api_template_detail", o["template"].pk), ("delete", "api_template_detail", o["template"].pk),
        ("get", "api_job_detail", o["job"].pk), ("post", "api_job_cancel", o["job"].pk),
        ("post", "api_job_retry", o["job"].pk), ("get", "api_job_zip", o["job"].pk),
        ("get", "api_render_detail", o["render"].pk), ("get", "api_render_download", o["render"].pk),
        ("get", "api_render_log", o["render"].pk), ("post", "api_render_cancel", o["render"].pk),
        ("post", "api_render_retry", o["render"].pk),
        ("get", "api_share_detail", o["share"].pk), ("delete", "api_share_detail", o["share"].pk),
    ]
    for method, name, pk in calls:
        response = getattr(client, method)(reverse(name, args=[pk]))
        assert response.status_code == 404, (method, name, response.status_code)
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}, name
    # Ids of another team inside request bodies and filters are 404s too.
    assert client.post(reverse("api_share_list"), {"job_id": str(o["job"].pk)}, format="json").status_code == 404
    assert client.post(reverse("api_share_list"), {"render_id": str(o["render"].pk)}, format="json").status_code == 404
    assert client.get(reverse("api_share_list"), {"job_id": str(o["job"].pk)}).status_code == 404
    # Lists never show the other team's rows.
    for name in ("api_template_list", "api_job_list", "api_share_list"):
        assert client.get(reverse(name)).json()["count"] == 0, name
    # Nothing changed.
    o["share"].refresh_from_db()
    assert o["share"].revoked_at is None and Template.objects.filter(pk=o["template"].pk).exists()


def test_own_key_reads_everything(cast, acme_objects, api_key):
    client = bearer(api_key[1])
    o = acme_objects
    job = client.get(reverse("api_job_detail", args=[o["job"].pk])).json()
    assert job["status"] == "done" and job["progress"] == 1.0 and len(job["renders"]) == 1
    assert job["renders"][0]["download_url"].endswith(f"/renders/{o['render'].pk}/download/")
    download = client.get(reverse("api_render_download", args=[o["render"].pk]))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    assert client.get(reverse("api_template_detail", args=[o["template"].pk])).json()["name"] == "Presenter 1"
    shares = client.get(reverse("api_share_list"), {"job_id": str(o["job"].pk)}).json()
    assert shares["count"] == 1 and shares["results"][0]["state"] == "active"
    # The log file does not exist: a 404 with the error shape, not a 500.
    assert client.get(reverse("api_render_log", args=[o["render"].pk])).status_code == 404


def test_malformed_and_unknown_ids(cast, api_key):
    client = bearer(api_key[1])
    assert client.get("/api/v1/jobs/not-a-uuid/").status_code == 404
    response = client.get(reverse("api_job_detail", args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_session_acts_for_current_team_and_viewer_cannot_write(cast, acme_objects):
    client = APIClient()
    client.force_login(cast.vera)
    o = acme_objects
    assert client.get(reverse("api_job_detail", args=[o["job"].pk])).status_code == 200
    for method, name, _kwargs in [
        ("post", "api_job_cancel", {}), ("post", "api_job_retry", {}),
        ("delete", "api_template_detail", {}), ("delete", "api_share_detail", {}),
    ]:
        pk = {"api_job_cancel": o["job"].pk, "api_job_retry": o["job"].pk,
              "api_template_detail": o["template"].pk, "api_share_detail": o["share"].pk}[name]
        response = getattr(client, method)(reverse(name, args=[pk]))
        assert response.status_code == 403, name
        assert response.json()["error"]["code"] == "permission_denied"
    response = client.post(reverse("api_share_list"), {"job_id": str(o["job"].pk)}, format="json")
    assert response.status_code == 403
    client.force_login(cast.charlie)
    assert client.get(reverse("api_job_detail", args=[o["job"].pk])).status_code == 404


def test_share_links_via_api(cast, acme_objects, api_key, client):
    api = bearer(api_key[1])
    o = acme_objects
    created = api.post(reverse("api_share_list"), {"render_id": str(o["render"].pk), "expires_in_days": 3, "password": "pw"},
                       format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["url"].startswith("http://testserver/s/") and body["has_password"] and body["state"] == "active"
    assert body["render_id"] == str(o["render"].pk) and body["job_id"] is None
    detail = api.get(reverse("api_share_detail", args=[body["id"]])).json()
    assert "url" not in detail  # the token is only ever in the create response
    assert client.get(body["url"]).status_code == 200  # the password form
    revoked = api.delete(reverse("api_share_detail", args=[body["id"]]))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert client.get(body["url"]).status_code == 410
    bad = api.post(reverse("api_share_list"), {"job_id": str(o["job"].pk), "render_id": str(o["render"].pk)}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_job_list_filters_and_pagination(cast, api_key, make_finished_job):
    from datetime import timedelta

    from django.utils import timezone

    old = make_finished_job(cast.acme, n=1, title="old")
    Job.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=10))
    for i in range(3):
        make_finished_job(cast.acme, n=1, title=f"new {i}")
    Job.objects.filter(title="new 0").update(status="failed")
    client = bearer(api_key[1])
    page = client.get(reverse("api_job_list"), {"page_size": 2}).json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert [j["title"] for j in client.get(reverse("api_job_list"), {"status": "failed"}).json()["results"]] == ["new 0"]
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert client.get(reverse("api_job_list"), {"created_after": since}).json()["count"] == 3
    assert client.get(reverse("api_job_list"), {"created_before": since}).json()["count"] == 1
    bad = client.get(reverse("api_job_list"), {"status": "bogus"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    assert client.get(reverse("api_job_list"), {"created_after": "yesterday"}).status_code == 400


def test_retry_with_nothing_to_retry_is_409(cast, acme_objects, api_key):
    response = bearer(api_key[1]).post(reverse("api_job_retry", args=[acme_objects["job"].pk]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_webhook_url_refused_in_production_mode(cast, api_key, settings, media_dir):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with open(media_dir / "speech_en_1.wav", "rb") as audio:
        response = bearer(api_key[1]).post(reverse("api_job_list"), {
            "audio": audio, "template_ids": "00000000-0000-0000-0000-000000000000",
            "webhook_url": "http://169.254.169.254/latest/"}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "webhook_url" in error["fields"]


def test_schema_generates_and_validates(db):
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = schema["paths"]
    for path in ("/api/v1/templates/", "/api/v1/jobs/", "/api/v1/jobs/{id}/cancel/", "/api/v1/renders/{id}/download/",
                 "/api/v1/shares/", "/api/v1/usage/"):
        assert path in paths, path
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"


@pytest.mark.slow
def test_schema_command_fails_on_no_warnings(db):
    """`manage.py spectacular --validate --fail-on-warn` passes (what CI runs)."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_docs_pages_served_from_sidecar(client, db):
    for name in ("api_docs", "api_redoc"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert b"cdn.jsdelivr" not in response.content and b"unpkg.com" not in response.content
    assert client.get(reverse("api_schema")).status_code == 200


def test_upload_over_file_limit_is_413_and_over_storage_is_403_quota(cast, api_key, media_dir):
    from accounts.models import Team

    client = bearer(api_key[1])
    Team.objects.filter(pk=cast.acme.pk).update(template_max_bytes=50_000)
    with open(media_dir / "face_square_3.mp4", "rb") as f:
        response = client.post(reverse("api_template_list"), {"file": f, "name": "big"}, format="multipart")
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    Team.objects.filter(pk=cast.acme.pk).update(template_max_bytes=None, storage_bytes_limit=50_000)
    with open(media_dir / "face_square_3.mp4", "rb") as f:
        response = client.post(reverse("api_template_list"), {"file": f, "name": "big"}, format="multipart")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "quota_storage" and error["limit"] == 50_000
    assert Template.objects.filter(team=cast.acme).count() == 0


def test_viewer_upload_is_403_before_reading_the_file(cast, media_dir):
    client = APIClient()
    client.force_login(cast.vera)
    with open(media_dir / "face_square_3.mp4", "rb") as f:
        response = client.post(reverse("api_template_list"), {"file": f}, format="multipart")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("value", ["0015-11-06T02:28:22.1-17:01", "0001-01-01T00:00:00+23:00", "2020-02-30", "9999-12-31"])
def test_odd_created_filters_are_400_or_200_never_500(cast, api_key, value):
    """Found by schemathesis on PostgreSQL: exotic offsets used to reach the database."""
    response = bearer(api_key[1]).get(reverse("api_job_list"), {"created_after": value, "created_before": value})
    assert response.status_code in (200, 400)
