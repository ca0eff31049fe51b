"""API keys: hashed storage, Bearer authentication, revocation, last-use stamping, the command
and the /team/api/ page."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.api_keys import apikey_create, apikey_for_plaintext, apikey_revoke
from accounts.models import ApiKey, token_hash


def bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_key_shape_and_storage(cast):
    key, plaintext = apikey_create(team=cast.acme, name="CMS", created_by=cast.alice)
    assert plaintext.startswith("mp_") and len(plaintext) >= 40
    assert key.prefix == plaintext[:11] and key.key_hash == token_hash(plaintext)
    assert not ApiKey.objects.filter(key_hash=plaintext).exists()
    assert apikey_for_plaintext(plaintext) == key
    assert apikey_for_plaintext(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None


def test_bearer_key_reads_its_team(cast, api_key):
    _, plaintext = api_key
    response = bearer(plaintext).get(reverse("api_usage"))
    assert response.status_code == 200
    assert response.json()["storage_bytes_limit"] > 0


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer mp_unknownkey", "Bearer not-a-key", "Bearer a b"])
def test_missing_or_bad_key_is_401_with_error_shape(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(reverse("api_job_list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()["error"]
    assert body["code"] in ("not_authenticated", "authentication_failed") and body["message"]


def test_revoked_key_is_401(cast, api_key):
    key, plaintext = api_key
    client = bearer(plaintext)
    assert client.get(reverse("api_job_list")).status_code == 200
    apikey_revoke(key=key)
    response = client.get(reverse("api_job_list"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_last_used_recorded_at_most_once_a_minute(cast, api_key):
    key, plaintext = api_key
    client = bearer(plaintext)
    client.get(reverse("api_usage"))
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    client.get(reverse("api_usage"))
    key.refresh_from_db()
    assert key.last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(reverse("api_usage"))
    key.refresh_from_db()
    assert key.last_used_at > first - timedelta(seconds=1)


def test_management_command_prints_key_once(cast):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--team", "acme", "--name", "deploy", stdout=out, stderr=err)
    plaintext = out.getvalue().strip()
    assert apikey_for_plaintext(plaintext).team == cast.acme
    assert plaintext not in err.getvalue()


def test_throttle_per_key(cast, api_key, globex_key, settings, redis_conn):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_key": "3/min"}}
    client = bearer(api_key[1])
    for _ in range(3):
        assert client.get(reverse("api_usage")).status_code == 200
    response = client.get(reverse("api_usage"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled" and response.json()["error"]["retry_after"] >= 1
    assert bearer(globex_key[1]).get(reverse("api_usage")).status_code == 200  # another key, its own budget


def test_team_api_page_admin_creates_and_revokes(client, cast):
    client.force_login(cast.alice)
    page = client.get(reverse("team_api"))
    assert page.status_code == 200
    created = client.post(reverse("team_api"), {"action": "create_key", "name": "Zapier"})
    plaintext = created.context["new_key_plaintext"]
    assert plaintext.encode() in created.content
    key = apikey_for_plaintext(plaintext)
    assert key.name == "Zapier" and key.created_by == cast.alice
    again = client.get(reverse("team_api"))
    assert plaintext.encode() not in again.content and key.prefix.encode() in again.content
    client.post(reverse("team_api"), {"action": "revoke_key", "key": str(key.pk)})
    key.refresh_from_db()
    assert key.revoked_at is not None
    rotated = client.post(reverse("team_api"), {"action": "rotate_secret"})
    cast.acme.refresh_from_db()
    assert cast.acme.webhook_secret.startswith("whsec_") and cast.acme.webhook_secret.encode() in rotated.content
    assert cast.acme.webhook_secret.encode() not in client.get(reverse("team_api")).content


def test_team_api_page_members_see_but_cannot_change(client, cast, api_key):
    client.force_login(cast.bob)
    page = client.get(reverse("team_api"))
    assert page.status_code == 200 and api_key[0].prefix.encode() in page.content
    assert b'value="create_key"' not in page.content
    assert client.post(reverse("team_api"), {"action": "create_key", "name": "x"}).status_code == 403
    assert client.post(reverse("team_api"), {"action": "revoke_key", "key": str(api_key[0].pk)}).status_code == 403
    assert client.post(reverse("team_api"), {"action": "rotate_secret"}).status_code == 403
    api_key[0].refresh_from_db()
    assert api_key[0].revoked_at is None


def test_team_api_page_cannot_revoke_other_teams_key(client, cast, globex_key):
    client.force_login(cast.alice)
    assert client.post(reverse("team_api"), {"action": "revoke_key", "key": str(globex_key[0].pk)}).status_code == 404
    globex_key[0].refresh_from_db()
    assert globex_key[0].revoked_at is None


def test_team_api_webhook_url_guarded(client, cast, settings):
    client.force_login(cast.alice)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    bad = client.post(reverse("team_api"), {"action": "webhook_url", "webhook_url": "http://169.254.169.254/"})
    assert bad.status_code == 400
    cast.acme.refresh_from_db()
    assert cast.acme.webhook_url == ""
    ok = client.post(reverse("team_api"), {"action": "webhook_url", "webhook_url": "https://93.184.216.34/hook"})
    assert ok.status_code == 302
    cast.acme.refresh_from_db()
    assert cast.acme.webhook_url == "https://93.184.216.34/hook"
