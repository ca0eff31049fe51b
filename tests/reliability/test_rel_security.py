"""Security properties checked against the running code: CSRF on every POST door, websocket
origin check, production cookie flags, safe media content types, token strength and constant-time
comparisons, brute-force throttles and secrets kept out of the logs.

`manage.py check --deploy` in production mode is proven by tests/deploy/test_production_mode.py
(it runs it with --fail-level WARNING); it is not repeated here."""
from __future__ import annotations

import base64
import inspect
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from test_rel_tenant_matrix import ROUTES, _body, _classify, _staff_url, _ws_connect, collected_routes

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]
EXECUTABLE_TYPES = ("text/html", "image/svg+xml", "application/javascript", "text/javascript", "application/xhtml+xml")


def _concrete_url(key, pattern, p, w) -> str | None:
    kind = _classify(key, pattern)
    spec = ROUTES.get(key)
    if kind == "staff":
        return _staff_url(key, p, pattern, w)
    if spec is not None and spec.kwargs:
        return reverse(key, kwargs=spec.kwargs(w))
    if spec is not None and spec.variants:
        return reverse(key, kwargs=spec.variants(w)[0][0])
    params = list(getattr(p.pattern, "converters", {}) or {}) or list(getattr(p.pattern, "regex", re.compile("")).groupindex)
    if params:
        # allauth's key-bearing pages (email confirmation, password reset) take any string.
        return reverse(key, kwargs={k: "x" for k in params}) if not key.startswith("<") else None
    return reverse(key) if not key.startswith("<") else "/" + pattern


def test_every_post_without_csrf_token_is_refused(cast, acme_world):
    """A signed-in owner's browser tricked into POSTing anywhere gets 403 from every route."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    refused, accepted = [], []
    for key, pattern, p in collected_routes():
        url = _concrete_url(key, pattern, p, acme_world)
        if url is None:
            continue
        response = client.post(url, {"name": "x", "action": "create_key", "email": "evil@example.com"})
        (refused if response.status_code == 403 else accepted).append(f"{key} {url}: {response.status_code}")
    assert not accepted, "POST without a CSRF token was not refused:\n" + "\n".join(accepted)
    assert len(refused) >= 150
    # Nothing happened: no key, no invitation, no rename.
    assert acme_world.key.team.api_keys.count() == 2
    assert not acme_world.key.team.invitations.filter(email="evil@example.com").exists()


def test_api_key_requests_need_no_csrf_and_sessions_do(cast, acme_world):
    """DRF's session authentication enforces CSRF too; an API key (not a cookie) does not need it."""
    session = Client(enforce_csrf_checks=True)
    session.force_login(cast.alice)
    url = reverse("api_render_retry", kwargs={"pk": acme_world.failed.pk})
    assert session.post(url).status_code == 403
    keyed = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {acme_world.key_plain}"})
    assert keyed.post(url).status_code in (200, 202)


@pytest.mark.django_db(transaction=True)
def test_websocket_with_a_foreign_origin_is_rejected(cast, acme_world, redis_conn):
    from test_rel_tenant_matrix import _session_for

    path = f"/ws/jobs/{acme_world.job.pk}/"
    session = _session_for(cast.alice)
    connected, _code, _first = _ws_connect(path, session_key=session, origin="https://evil.example")
    assert not connected
    connected, _code, first = _ws_connect(path, session_key=session)  # same user, our origin
    assert connected and first["snapshot"]


def test_production_cookies_are_secure(tmp_path):
    """The settings module as production loads it, in its own process."""
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in "
            "('SESSION_COOKIE_SECURE','CSRF_COOKIE_SECURE','SESSION_COOKIE_HTTPONLY','SECURE_HSTS_SECONDS','SECURE_SSL_REDIRECT',"
            "'SECURE_CONTENT_TYPE_NOSNIFF','X_FRAME_OPTIONS','DEBUG','SECURE_PROXY_SSL_HEADER')}))")
    env = {**os.environ, "DJANGO_ENV": "production", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "mouthpiece.example",
           "VAR_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout.strip().splitlines()[-1])
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_SSL_REDIRECT"] and s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert s["X_FRAME_OPTIONS"] == "DENY" and s["DEBUG"] is False


def test_uploaded_media_is_never_served_as_active_content(cast, acme_world, media_dir, settings):
    from jobs.files import content_type_for

    w = acme_world
    client = Client()
    client.force_login(cast.alice)
    # Script-capable names are refused at upload...
    html = SimpleUploadedFile("evil.html", b"<script>alert(1)</script>", content_type="text/html")
    svg = SimpleUploadedFile("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', content_type="image/svg+xml")
    for upload in (html, svg):
        response = client.post(reverse("template_upload"), {"file": upload, "name": "x"}, headers={"X-Requested-With": "XMLHttpRequest"})
        assert response.status_code == 400 and response.json()["errors"]
    audio = SimpleUploadedFile("evil.html", b"<script>alert(1)</script>", content_type="text/html")
    response = client.post(reverse("job_new"), {"audio": audio, "templates": [str(w.template.pk)], "priority": "default"},
                           headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 400
    # ...and a file whose bytes are HTML, stored under a media name, is still served inertly.
    Path(w.done.output.path).write_bytes(b"<html><script>alert(document.cookie)</script></html>" * 10)
    for ext in (".html", ".svg", ".js", ".xhtml", ".htm", ".xml"):
        assert content_type_for(f"x{ext}") == "application/octet-stream"
    key = {"Authorization": f"Bearer {w.key_plain}"}
    urls = [(client, reverse(name, kwargs=kwargs)) for name, kwargs in (
        ("template_poster", {"pk": w.template.pk}), ("template_video", {"pk": w.template.pk}),
        ("render_video", {"pk": w.done.pk}), ("render_download", {"pk": w.done.pk}), ("render_log", {"pk": w.done.pk}),
        ("job_zip", {"pk": w.job.pk}))]
    urls += [(Client(headers=key), reverse(name, kwargs={"pk": pk})) for name, pk in (
        ("api_render_download", w.done.pk), ("api_render_log", w.done.pk), ("api_job_zip", w.job.pk))]
    urls += [(Client(), reverse(name, kwargs={"token": w.render_token, "render_id": w.done.pk}))
             for name in ("share_video", "share_download", "share_poster")]
    served = 0
    for c, url in urls:
        response = c.get(url)
        assert response.status_code == 200, (url, response.status_code)
        _body(response)
        content_type = response["Content-Type"].split(";")[0].strip().lower()
        assert content_type not in EXECUTABLE_TYPES, (url, content_type)
        assert response["X-Content-Type-Options"] == "nosniff", url
        served += 1
    assert served == len(urls) == 12


def _bits(token: str) -> int:
    return len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8


def test_tokens_are_long_random_and_looked_up_by_hash(cast, acme_world):
    from accounts import api_keys, selectors
    from jobs import sharing

    w = acme_world
    assert _bits(w.render_token) >= 128 and _bits(w.invitation_token) >= 128
    assert _bits(w.key_plain[len("mp_"):]) >= 128
    tokens = {sharing.sharelink_create(team=cast.acme, render=w.done)[1] for _ in range(50)}
    assert len(tokens) == 50
    # Lookups hash what they are given and query by digest: no token is compared byte by byte.
    # The three lookups go through accounts.tokens.object_for_token, which does the hashing.
    from accounts import tokens

    source = inspect.getsource(tokens.object_for_token)
    assert "token_hash(" in source and not re.search(r"\b(token|plaintext)\s*[!=]=", source)
    for fn in (sharing.sharelink_for_token, api_keys.apikey_for_plaintext, selectors.invitation_by_token):
        source = inspect.getsource(fn)
        assert ("token_hash(" in source or "object_for_token(" in source) and \
            not re.search(r"\b(token|plaintext)\s*[!=]=", source), fn.__name__
    # Where a secret-derived value is compared, it is compared in constant time.
    assert "hmac.compare_digest" in inspect.getsource(sharing.sharelink_session_allows)
    from jobs import webhooks

    assert "hmac.compare_digest" in inspect.getsource(webhooks.verify_signature)
    # And nowhere in the application code is a secret compared with == / !=.
    offenders = []
    for path in [*REPO.glob("accounts/*.py"), *REPO.glob("jobs/*.py"), *REPO.glob("config/*.py")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b\w*(token|secret|password|key_hash|signature)\w*\s*[!=]=\s*\w", line, re.I) and "none" not in line.lower():
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders


def _cache_clear_own_keys():
    """Only this run's cache keys: another suite may share the Redis database."""
    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("*")))
    if keys:
        client.delete(*keys)


def test_login_brute_force_is_throttled(cast, client):
    """allauth: after 5 failures even the right password is refused; past 30 tries a minute from
    one address the answer is a plain 429."""
    _cache_clear_own_keys()
    url = reverse("account_login")
    for i in range(5):
        assert client.post(url, {"login": "alice@example.com", "password": f"wrong-{i}"}).status_code == 200
    response = client.post(url, {"login": "alice@example.com", "password": cast.password})
    assert "_auth_user_id" not in client.session and "Too many failed login attempts" in response.content.decode()
    statuses = [client.post(url, {"login": f"nobody{i}@example.com", "password": "x"}).status_code for i in range(30)]
    assert statuses[-1] == 429 and statuses.count(429) >= 1, statuses
    _cache_clear_own_keys()


def test_share_password_guessing_is_throttled(cast, acme_world, settings):
    _cache_clear_own_keys()
    settings.SHARE_PASSWORD_MAX_ATTEMPTS = 5
    url = reverse("share_view", kwargs={"token": acme_world.pw_token})
    c = Client()
    statuses = [c.post(url, {"password": f"guess-{i}"}).status_code for i in range(7)]
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429, 429], statuses
    # Even the right password is refused while throttled: guessing cannot be hidden among successes.
    assert c.post(url, {"password": "acme-pw-9"}).status_code == 429
    _cache_clear_own_keys()


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text + repr(getattr(record, "__dict__", {})))


def test_secrets_never_reach_the_logs(cast, acme_world, mailoutbox):
    """API key creation, webhook secret rotation, invitations and password share links, driven
    through the portal with the root logger at DEBUG: no plaintext appears in any record."""
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        client = Client()
        client.force_login(cast.alice)
        page = client.post(reverse("team_api"), {"action": "create_key", "name": "ci"}).content.decode()
        key = re.search(r"mp_[A-Za-z0-9_\-]{40,}", page).group(0)
        page = client.post(reverse("team_api"), {"action": "rotate_secret"}).content.decode()
        secret = re.search(r"whsec_[A-Za-z0-9_\-]{40,}", page).group(0)
        client.post(reverse("invitation_create"), {"email": "spy@example.com", "role": "member"})
        invite_token = re.search(r"/invitations/([A-Za-z0-9_\-]{40,})/", mailoutbox[-1].body).group(1)
        page = client.post(reverse("share_create"), {"render": str(acme_world.done.pk), "password": "hunter2-share-pw"}).content.decode()
        share_token = re.search(r"/s/([A-Za-z0-9_\-]{30,})/", page).group(1)
        Client().post(reverse("share_view", kwargs={"token": share_token}), {"password": "hunter2-share-pw"})
        Client(headers={"Authorization": f"Bearer {key}"}).get(reverse("api_usage"))
        Client(headers={"Authorization": f"Bearer {acme_world.revoked_plain}"}).get(reverse("api_usage"))  # a 401, logged
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    assert capture.texts, "nothing was logged at all: the capture is not working"
    for secret_text in (key, secret, invite_token, share_token, "hunter2-share-pw", acme_world.revoked_plain):
        leaked = [t for t in capture.texts if secret_text in t]
        assert not leaked, f"{secret_text[:8]}… logged: {leaked[0][:300]}"
