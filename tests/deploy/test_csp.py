"""Content-Security-Policy (issue 17, Low 11): every HTML page says scripts come from this origin
only, and no template carries an inline script any more. tests/browser checks in chromium that
no page of the browser suite reports a violation."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


def _directives(header: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("route", ["dashboard", "template_list", "job_new", "team_settings", "team_api", "usage"])
def test_portal_pages_have_a_strict_script_policy(cast, route):
    client = Client()
    client.force_login(cast.alice)
    response = client.get(reverse(route))
    assert response.status_code == 200
    csp = _directives(response["Content-Security-Policy"])
    assert csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'self'"
    html = response.content.decode()
    inline = [m for m in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) if "application/json" not in m]
    assert inline == [], f"inline scripts on {route}: {inline}"


def test_signed_out_pages_and_the_admin_have_it_too(db):
    for path in (reverse("account_login"), reverse("account_signup"), "/admin/login/"):
        response = Client().get(path, follow=True)
        assert _directives(response["Content-Security-Policy"])["script-src"] == "'self'", path


def test_non_html_responses_carry_no_policy(cast):
    from accounts.api_keys import apikey_create

    key = apikey_create(team=cast.acme, name="csp")[1]
    response = Client(headers={"Authorization": f"Bearer {key}"}).get(reverse("api_job_list"))
    assert response.status_code == 200 and "Content-Security-Policy" not in response


def test_no_template_has_an_inline_script_or_event_handler():
    found = []
    for path in (REPO / "templates").rglob("*.html"):
        text = path.read_text()
        for m in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=\"|javascript:", text):
            found.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert found == []


def test_the_apps_scripts_never_evaluate_strings():
    """The browser harness allows 'unsafe-eval' for Playwright only; the app must not need it."""
    found = []
    for path in (REPO / "static" / "js").rglob("*.js"):
        for m in re.finditer(r"\beval\(|new Function\(|set(?:Timeout|Interval)\(\s*[\"'`]", path.read_text()):
            found.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert found == []


def test_the_default_policy_is_strict(settings):
    from config import csp

    settings.CSP_SCRIPT_SRC_EXTRA = ""
    assert _directives(csp.policy())["script-src"] == "'self'"
    assert "'unsafe-inline'" in _directives(csp.policy(relaxed=True))["script-src"]


def test_presigned_media_origins_are_allowed_for_video_and_images(settings):
    """With STORAGE_BACKEND=s3 players load presigned URLs from the bucket's public endpoint."""
    from config import csp

    settings.STORAGE_BACKEND = "s3"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "x", "OPTIONS": {"endpoint_url": "http://minio:9000"}}}
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = "https://media.example.com/some/path"
    d = _directives(csp.policy())
    assert "https://media.example.com" in d["media-src"] and "https://media.example.com" in d["img-src"]
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = ""
    assert "http://minio:9000" in _directives(csp.policy())["media-src"]
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "x", "OPTIONS": {}}}
    assert "https://*.amazonaws.com" in _directives(csp.policy())["media-src"]
