"""The production settings, for real, in child processes: DJANGO_ENV=production against
PostgreSQL and Redis at 127.0.0.1, first with media on the filesystem, then on S3-compatible
storage (moto's server standing in for MinIO/AWS). `check --deploy`, migrations, collectstatic,
web answering /healthz, the container health probe, and JSON logs."""
from __future__ import annotations

import email.message
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config import webserver

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
PG_DB = "mp_ops_prod"
REDIS_DB = 7  # this suite's own Redis database: never 0-2, which the other passes flush
HOST = "mouthpiece.test"

pytestmark = pytest.mark.slow


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 30.0, **headers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return _get(url, **headers)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _get(url: str, **headers) -> tuple[int, email.message.Message, bytes]:
    request = urllib.request.Request(url, headers={k.replace("_", "-"): v for k, v in headers.items()})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.headers, response.read()  # case-insensitive names
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def services():
    if not (_reachable(5432) and _reachable(6379)):
        pytest.skip("PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are needed: bash .ci/services.sh")
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    import redis

    conn = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def prod_env(services, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "AWS_", "STORAGE_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "production",
        "HEALTHZ_TOKEN": secrets.token_urlsafe(16),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "DATABASE_URL": f"{PG}/{PG_DB}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "REDIS_QUEUE_DB": str(REDIS_DB), "REDIS_CHANNELS_DB": str(REDIS_DB), "REDIS_CACHE_DB": str(REDIS_DB),
        "VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "EMAIL_URL": "smtp://127.0.0.1:25",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("LOG_JSON", None)  # production's default must be JSON
    env.pop("DEBUG", None)
    return env


def _manage(env, *args, timeout=180) -> subprocess.CompletedProcess:
    result = subprocess.run([PY, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def _start(cmd, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_filesystem_storage_deploy_check_healthz_and_json_logs(prod_env, services, tmp_path):
    _manage(prod_env, "check", "--deploy", "--fail-level", "WARNING")
    _manage(prod_env, "migrate", "--noinput", "-v", "0")
    _manage(prod_env, "collectstatic", "--noinput", "-v", "0")
    assert list((tmp_path / "static").glob("staticfiles.json")), "manifest storage wrote no manifest"

    port = _free_port()
    web_log = tmp_path / "web.log"
    web = _start(webserver.command("127.0.0.1", port, proxy_headers=True), prod_env, web_log)
    worker = None
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        status, headers, _ = _wait_http(url, Host=HOST)
        assert status == 301 and headers["Location"] == f"https://{HOST}/healthz"  # plain HTTP goes to HTTPS

        status, _, body = _get(url, Host=HOST, X_Forwarded_Proto="https", X_Healthz_Token=prod_env["HEALTHZ_TOKEN"])
        report = json.loads(body)
        assert status == 503, report
        assert report["checks"]["database"] == {**report["checks"]["database"], "ok": True, "vendor": "postgresql"}
        assert report["checks"]["redis"]["ok"] and report["checks"]["workers"]["alive"] == 0

        anonymous = _get(url, Host=HOST, X_Forwarded_Proto="https")  # no token: the status alone
        assert anonymous[0] == 503 and json.loads(anonymous[2]) == {"status": "fail", "scope": "all"}
        assert _get(url, Host="evil.example", X_Forwarded_Proto="https")[0] == 400  # ALLOWED_HOSTS holds

        # The container health probe, as Docker runs it inside the web container.
        probe = subprocess.run([PY, "docker/healthcheck.py", "--scope", "web", "--port", str(port)], cwd=REPO,
                               env=prod_env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        probe_all = subprocess.run([PY, "docker/healthcheck.py", "--scope", "all", "--port", str(port)], cwd=REPO,
                                   env=prod_env, capture_output=True, text=True, timeout=30)
        assert probe_all.returncode == 1 and "503" in probe_all.stdout

        # A render worker appears: the platform is healthy.
        rq = os.path.join(os.path.dirname(PY), "rq")
        worker = _start([rq, "worker", "--url", f"redis://127.0.0.1:6379/{REDIS_DB}", "--name", "prod-render-1",
                         "high", "default", "low"], prod_env, tmp_path / "worker.log")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, _, body = _get(url, Host=HOST, X_Forwarded_Proto="https", X_Healthz_Token=prod_env["HEALTHZ_TOKEN"])
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, body
        assert json.loads(body)["checks"]["workers"]["alive"] == 1

        workers = _manage(prod_env, "workers", "--json")
        assert [w["name"] for w in json.loads(workers.stdout)] == ["prod-render-1"]
        queues = _manage(prod_env, "queues", "--json")
        assert set(json.loads(queues.stdout)) >= {"high", "default", "low", "prep"}
    finally:
        if worker:
            _stop(worker)
        _stop(web)

    # Production logs are JSON lines: the 503s above were logged by django.request.
    records = [json.loads(line) for line in web_log.read_text().splitlines() if line.startswith("{")]
    assert any(r["logger"] == "django.request" and "/healthz" in r["msg"] and r["level"] == "ERROR" for r in records), \
        web_log.read_text()[-2000:]


@pytest.fixture
def s3_server(tmp_path):
    moto = os.path.join(os.path.dirname(PY), "moto_server")
    if not os.path.exists(moto):
        pytest.skip("moto[server] is not installed")
    port = _free_port()
    proc = _start([moto, "-H", "127.0.0.1", "-p", str(port)], {**os.environ}, tmp_path / "moto.log")
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


S3_SCRIPT = r"""
import json, sys, urllib.request
import django
django.setup()
import boto3
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from config.storage import media_download_url, media_local_path, media_store_file, storage_is_remote

opts = settings.STORAGES["default"]["OPTIONS"]
boto3.client("s3", endpoint_url=opts["endpoint_url"], aws_access_key_id=opts["access_key"],
             aws_secret_access_key=opts["secret_key"], region_name=opts["region_name"]).create_bucket(Bucket=opts["bucket_name"])

class Field:  # what a FileField hands out: a name and its storage
    def __init__(self, name):
        self.name, self.storage = name, default_storage
    def __bool__(self):
        return bool(self.name)

out = {"remote": storage_is_remote()}
name = default_storage.save("teams/1/templates/x/source.mp4", ContentFile(b"video-bytes" * 1000))
out["saved"] = name
url = media_download_url(Field(name), filename="Greeting.mp4")
out["url"] = url
public = settings.AWS_S3_PUBLIC_ENDPOINT_URL
with urllib.request.urlopen(url.replace(public, opts["endpoint_url"]) if public else url) as r:
    out["downloaded"] = r.read() == b"video-bytes" * 1000
    out["disposition"] = r.headers.get("Content-Disposition")
local = media_local_path(Field(name))
out["local_ok"] = local.read_bytes() == b"video-bytes" * 1000
out["local_again_same"] = media_local_path(Field(name)) == local
tmp = settings.VAR_DIR / "render.mp4"
tmp.write_bytes(b"rendered")
stored = media_store_file(local_path=tmp, name="teams/1/jobs/y/renders/z.mp4")
out["stored"] = stored
out["stored_bytes"] = default_storage.open(stored).read() == b"rendered"
out["temp_removed"] = not tmp.exists()
print(json.dumps(out))
"""


def test_s3_storage_deploy_check_and_presigned_downloads(prod_env, s3_server, tmp_path):
    env = {**prod_env, "STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "mp-media", "AWS_S3_ENDPOINT_URL": s3_server,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_S3_REGION_NAME": "us-east-1"}
    _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    result = subprocess.run([PY, "-c", S3_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["remote"] is True
    assert out["saved"] == "teams/1/templates/x/source.mp4"
    assert out["url"].startswith(f"{s3_server}/mp-media/teams/1/templates/x/source.mp4?") and "X-Amz-Signature=" in out["url"]
    assert out["downloaded"] and out["disposition"] == 'attachment; filename="Greeting.mp4"'
    assert out["local_ok"] and out["local_again_same"]
    assert out["stored"] == "teams/1/jobs/y/renders/z.mp4" and out["stored_bytes"] and out["temp_removed"]

    # Browsers reach the bucket by its public name: the URL is signed for that host, not rewritten.
    public = {**env, "AWS_S3_PUBLIC_ENDPOINT_URL": "https://media.mouthpiece.test"}
    script = S3_SCRIPT.replace("create_bucket(Bucket=opts[\"bucket_name\"])", "list_buckets()")
    result = subprocess.run([PY, "-c", script], cwd=REPO, env=public, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["url"].startswith("https://media.mouthpiece.test/mp-media/teams/1/templates/x/")
