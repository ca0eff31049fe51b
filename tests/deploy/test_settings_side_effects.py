"""Importing the settings has no side effects: no folder is created and no Redis is started
(mypy's Django plugin and other tools import them). The entry points prepare a process."""
from __future__ import annotations

import os
import subprocess
import sys

from testutil import REPO


def _run(code: str, var_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_VERSION"}}
    env.update({"VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_ENV": "development"})
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_importing_settings_creates_nothing_and_starts_no_redis(tmp_path):
    var = tmp_path / "var"
    done = _run("import django; django.setup(); from django.conf import settings; print(settings.REDIS_URL)", var)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("unix://")  # the embedded Redis's address, known
    assert not var.exists(), sorted(str(p) for p in var.rglob("*"))


def test_an_entry_point_prepares_folders_and_the_embedded_redis(tmp_path):
    var = tmp_path / "var"
    code = ("import django; django.setup(); from config import runtime, embedded_redis; from pathlib import Path; "
            "runtime.prepare(); from django.conf import settings; "
            "print(embedded_redis.is_answering(embedded_redis.socket_path(Path(settings.VAR_DIR))))")
    done = _run(code, var)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    for sub in ("log", "tmp/uploads", "staticfiles"):
        assert (var / sub).is_dir(), sub


def test_a_child_of_runall_does_not_start_its_own_redis(tmp_path):
    var = tmp_path / "var"
    code = ("import os; os.environ['EMBEDDED_REDIS_START'] = '0'; import django; django.setup(); "
            "from config import runtime, embedded_redis; from pathlib import Path; runtime.prepare(); "
            "from django.conf import settings; "
            "print(embedded_redis.is_answering(embedded_redis.socket_path(Path(settings.VAR_DIR))))")
    done = _run(code, var)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert (var / "log").is_dir()
