"""Per-IP limits behind the proxy (issue 17, High 2), through the repo's own nginx.conf: nginx
(from docker/nginx/nginx.conf, pointed at loopback) in front of uvicorn started with compose's
proxy flags, trusting only the proxy's address. Clients connect from distinct loopback addresses
(127.0.0.x) and send a new forged X-Forwarded-For each time: the limits count the real address."""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from testutil import REPO, database_url, stop_process, wait_for

from config import webserver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Browser:
    """A tiny HTTP client with cookies that connects from a chosen loopback address."""

    def __init__(self, port: int, source: str):
        self.port, self.source, self.cookies = port, source, {}

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.source, 0))
        body = urllib.parse.urlencode(form) if form is not None else None
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, text

    def csrf(self, path: str) -> str:
        _status, html = self.request("GET", path)
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    def guess(self, path: str, password: str, forged: str | None = None) -> int:
        """POST a share password (with the form's CSRF token), optionally forging X-Forwarded-For."""
        token = self.csrf(path)
        headers = {"X-Forwarded-For": forged} if forged else {}
        return self.request("POST", path, {"csrfmiddlewaretoken": token, "password": password}, headers)[0]


@pytest.fixture
def proxied(tmp_path, settings):
    """(nginx port, uvicorn port): the repo's nginx.conf in front of uvicorn as compose runs it."""
    if not NGINX:
        pytest.skip("nginx is not installed (make test installs nginx-light)")
    web_port, nginx_port = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DJANGO_ENV": "test",
           "SHARE_PASSWORD_MAX_ATTEMPTS": "5", "SHARE_PASSWORD_LINK_MAX_ATTEMPTS": "12"}
    # compose: uvicorn believes X-Forwarded-For from the nginx container's address only; here
    # nginx reaches uvicorn from 127.0.0.1.
    web = subprocess.Popen(webserver.command("127.0.0.1", web_port, proxy_headers=True, trusted_proxy="127.0.0.1"), cwd=REPO,
                           env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "web.log", "wb"), start_new_session=True)
    conf = (REPO / "docker" / "nginx" / "nginx.conf").read_text()
    conf = conf.replace(" /tmp/", f" {tmp_path}/")  # pid and temp folders
    conf = conf.replace("server web:8000;", f"server 127.0.0.1:{web_port};")
    conf = conf.replace("listen 8080 default_server;", f"listen 127.0.0.1:{nginx_port} default_server;")
    conf = conf.replace("error_log /dev/stderr warn;", f"error_log {tmp_path}/error.log warn;")
    conf = conf.replace("access_log /dev/stdout json;", f"access_log {tmp_path}/access.log json;")
    assert f"server 127.0.0.1:{web_port};" in conf and f"listen 127.0.0.1:{nginx_port}" in conf
    (tmp_path / "nginx.conf").write_text("user root;\n" + conf if os.geteuid() == 0 else conf)
    proxy = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                              "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _listening(web_port), 60, "uvicorn to listen")
        wait_for(lambda: _listening(nginx_port), 20, "nginx to listen")
        yield nginx_port, web_port
    finally:
        stop_process(proxy, signal.SIGQUIT)
        stop_process(web, signal.SIGTERM)


@pytest.fixture
def pw_link(cast):
    from jobs import services, sharing
    from jobs.models import Job, Render

    job = Job.objects.create(team=cast.acme, created_by=cast.alice, title="proxy", audio_filename="a.wav", status="done")
    render = Render.objects.create(job=job, team=cast.acme, template_name="t", status="done")
    _link, token = sharing.sharelink_create(team=cast.acme, created_by=cast.alice, render=render, password="right-pw-9")
    assert services  # the rows are real; only the password page is exercised
    return f"/s/{token}/"


def _clear_cache():
    from django.core.cache import cache

    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("*")))
    if keys:
        client.delete(*keys)


def test_forged_x_forwarded_for_does_not_reset_the_share_password_limit(proxied, pw_link):
    """The probe's finding: 12 wrong guesses, each with a new X-Forwarded-For, then the right
    password accepted. Now the 6th guess from one client is a 429, and so is the right password."""
    _clear_cache()
    nginx_port, _ = proxied
    guesser = Browser(nginx_port, "127.0.0.2")
    statuses = [guesser.guess(pw_link, f"guess-{i}", f"203.0.113.{i}")
                for i in range(8)]
    assert statuses[:5] == [403] * 5 and set(statuses[5:]) == {429}, statuses
    assert guesser.guess(pw_link, "right-pw-9", "198.51.100.1") == 429
    # Another real address still has its own tries.
    assert Browser(nginx_port, "127.0.0.3").guess(pw_link, "right-pw-9") == 302
    _clear_cache()


def test_the_share_password_has_a_per_link_limit_across_addresses(proxied, pw_link):
    """Many real addresses, 3 guesses each: past SHARE_PASSWORD_LINK_MAX_ATTEMPTS (12 here) on
    the link, every address is refused, even one never seen before."""
    _clear_cache()
    nginx_port, _ = proxied
    statuses = []
    for n in range(5):
        client = Browser(nginx_port, f"127.0.1.{10 + n}")
        statuses += [client.guess(pw_link, f"guess-{n}-{i}") for i in range(3)]
    assert statuses[:12] == [403] * 12 and set(statuses[12:]) == {429}, statuses
    assert Browser(nginx_port, "127.0.1.99").guess(pw_link, "right-pw-9") == 429
    _clear_cache()


def test_forged_x_forwarded_for_does_not_escape_the_login_limit(proxied, cast):
    """allauth's per-address limit on failed logins (5 per 5 minutes) holds through nginx even
    when every attempt forges a new X-Forwarded-For and targets another account."""
    _clear_cache()
    nginx_port, _ = proxied
    client = Browser(nginx_port, "127.0.0.4")
    texts = []
    for i in range(6):
        token = client.csrf("/accounts/login/")
        status, text = client.request("POST", "/accounts/login/", {"csrfmiddlewaretoken": token, "login": f"nobody{i}@example.com",
                                                                   "password": "wrong"}, {"X-Forwarded-For": f"203.0.113.{50 + i}"})
        texts.append((status, "Too many failed login attempts" in text))
    assert [limited for _s, limited in texts[:5]] == [False] * 5, texts
    assert texts[5][1] or texts[5][0] == 429, texts
    _clear_cache()


def test_uvicorn_ignores_x_forwarded_for_from_anyone_but_the_proxy(proxied, pw_link):
    """Straight to uvicorn from another address (a host on the compose network that is not
    nginx): its X-Forwarded-For is not believed, so the limit counts that host."""
    _clear_cache()
    _, web_port = proxied
    direct = Browser(web_port, "127.0.0.5")
    statuses = [direct.guess(pw_link, f"g{i}", f"203.0.113.{100 + i}")
                for i in range(7)]
    assert statuses[:5] == [403] * 5 and set(statuses[5:]) == {429}, statuses
    _clear_cache()


@pytest.mark.django_db(transaction=False)
def test_compose_trusts_x_forwarded_for_from_the_nginx_container_only():
    import yaml

    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    web = compose["services"]["web"]["command"]
    trusted = web[web.index("--forwarded-allow-ips") + 1]
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == nginx_address and "*" not in trusted
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert "172.28.0.0/24" in subnet and "172.28.0.10" in nginx_address
    conf = (REPO / "docker" / "nginx" / "nginx.conf").read_text()
    assert "$proxy_add_x_forwarded_for" not in conf
    assert conf.count("proxy_set_header X-Forwarded-For $remote_addr;") == 2


def test_nginx_access_log_never_holds_a_share_or_invitation_token(proxied, pw_link, cast, tmp_path):
    """Issue 17, Low 6: the probe found share and invitation tokens in the access logs."""
    from accounts import services

    nginx_port, _ = proxied
    _invitation, invitation_token = services.invitation_create(actor=cast.alice, team=cast.acme, email="new@example.com")
    share_token = pw_link.strip("/").split("/")[1]
    client = Browser(nginx_port, "127.0.0.6")
    client.request("GET", pw_link)
    client.request("GET", f"/invitations/{invitation_token}/")
    client.request("GET", f"/s/{share_token}/video/00000000-0000-0000-0000-000000000000/")
    stop_deadline_log = tmp_path / "access.log"
    wait_for(lambda: stop_deadline_log.read_text().count("\n") >= 3, 10, "nginx to write its access log")
    log = stop_deadline_log.read_text()
    assert share_token not in log and invitation_token not in log, log
    assert '"uri":"/s/[redacted]/"' in log and '"uri":"/invitations/[redacted]/"' in log, log
    assert "/s/[redacted]/video/00000000-0000-0000-0000-000000000000/" in log
