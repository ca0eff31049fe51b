"""Secrets in logs (issue 17, Low 6): share tokens were in web.log ("Forbidden: /s/<token>/")
and, with invitation tokens, in uvicorn's access log; a logged invitation token lets a log reader
join the team. The web server is started as runall starts it (uvicorn, LOG_FILE) and every line
it writes, to the file and to its console, is read back."""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
from testutil import REPO, database_url, stop_process, wait_for

from config import webserver
from config.logging import redact

pytestmark = pytest.mark.django_db(transaction=True)


def test_redact_covers_every_secret_path_and_api_keys():
    line = ('127.0.0.1:5 - "GET /s/AbCdEf123456789_-xyz/video/1/ HTTP/1.1" 200 '
            "/invitations/tok3nTOK3Ntok3n/ /accounts/confirm-email/MTI:1u2v3w:abcdefgh/ "
            "/accounts/password/reset/key/3-abcdef12345/ Bearer mp_0123456789abcdefghijABCDEFGHIJ /team/invitations/12/revoke/")
    clean = redact(line)
    for secret in ("AbCdEf123456789_-xyz", "tok3nTOK3Ntok3n", "MTI:1u2v3w:abcdefgh", "3-abcdef12345", "0123456789abcdefghij"):
        assert secret not in clean
    assert "/s/[redacted]/video/1/" in clean and "/team/invitations/12/revoke/" in clean


def test_web_log_and_access_log_never_hold_a_token(cast, settings, tmp_path):
    from accounts import services
    from jobs import sharing
    from jobs.models import Job, Render

    job = Job.objects.create(team=cast.acme, created_by=cast.alice, title="logs", audio_filename="a.wav", status="done")
    render = Render.objects.create(job=job, team=cast.acme, template_name="t", status="done")
    _link, share_token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, render=render, password="pw-right-9")
    _inv, invitation_token = services.invitation_create(actor=cast.alice, team=cast.acme, email="reader@example.com")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_file, console = tmp_path / "web.log", tmp_path / "console.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DJANGO_ENV": "test",
           "LOG_FILE": str(log_file), "LOG_LEVEL": "INFO"}
    web = subprocess.Popen(webserver.command("127.0.0.1", port), cwd=REPO, env=env, stdout=open(console, "wb"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def listening():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(listening, 60, "uvicorn to listen")

        cookies = {}

        def get(method, path, form=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
            if form is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=urllib.parse.urlencode(form) if form is not None else None, headers=headers)
            response = conn.getresponse()
            html = response.read().decode()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    cookies[value.split("=", 1)[0]] = value.split("=", 1)[1].split(";", 1)[0]
            conn.close()
            get.html = html
            return response.status

        assert get("POST", f"/s/{share_token}/") == 403  # no CSRF cookie: django.security.csrf logs the path
        assert get("GET", f"/s/{share_token}/") == 200  # the password page
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', get.html).group(1)
        assert get("POST", f"/s/{share_token}/", {"csrfmiddlewaretoken": token, "password": "wrong"}) == 403  # "Forbidden: /s/<token>/"
        assert get("GET", f"/s/{share_token}x/") == 404  # "Not Found: /s/<token>x/"
        get("GET", f"/invitations/{invitation_token}/")
        get("GET", f"/invitations/{invitation_token}/?next=/s/{share_token}/")
        time.sleep(1)
    finally:
        stop_process(web, signal.SIGTERM)
    text = log_file.read_text() + console.read_text()
    assert share_token not in text and invitation_token not in text, text
    assert "Forbidden: /s/[redacted]/" in text and "Forbidden (CSRF cookie not set.): /s/[redacted]/" in text, text
    assert '"GET /s/[redacted]/ HTTP/1.1" 200' in text and '"GET /invitations/[redacted]/' in text, text
