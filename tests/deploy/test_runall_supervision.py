"""`manage.py runall` as a supervisor (issue 17, High 1 and Medium 4), for real: runall in its own
VAR_DIR (SQLite + its embedded Redis, CPU engine), then kill -9 of the render worker, of the web
process and of the embedded redis-server. The procedure is bench/recovery.py's (which prints the
figures of docs/RELIABILITY.md); here each recovery must take under 10 s and nothing may outlive
runall."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 10

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recovery():
    spec = importlib.util.spec_from_file_location("bench_recovery", REPO / "bench" / "recovery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _web_pid(runall_pid: int) -> int | None:
    import psutil

    for p in psutil.Process(runall_pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "uvicorn" in " ".join(p.cmdline()):
                return p.pid
        except psutil.Error:
            continue
    return None


def _redis_servers(var_dir: Path) -> list[int]:
    import psutil

    sock = str(var_dir / "redis" / "redis.sock")
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if "redis-server" in cmd and sock in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p.pid)
    return found


def test_runall_brings_workers_web_and_redis_back_within_seconds(recovery, tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "runall.log"
    proc = recovery.start_runall(var_dir, port, log)
    seen: set[int] = set()
    try:
        recovery.time_to_take(var_dir, time.monotonic(), timeout=300)
        recovery.wait(lambda: _http_ok(port), 60, "the web process")
        banner = log.read_text()
        assert "DEBUG is on: this is for development" in banner
        assert "DJANGO_ENV=production" in banner and "manage.py runall" in banner.split("DJANGO_ENV=production", 1)[1]

        # 1. kill -9 of the render worker while it renders and another render waits.
        seen |= recovery.descendants(proc.pid)
        before = recovery.render_workers(var_dir)
        killed_pid, new_pid, seconds = recovery.kill_render_worker(var_dir)
        assert seconds < TARGET_SECONDS, f"a new render worker took the waiting render after {seconds:.1f} s"
        killed_name = next(n for n, p in before.items() if p == killed_pid)
        recovery.wait(lambda: killed_name not in recovery.render_workers(var_dir), 10,
                      "the dead worker's registration to be dropped")
        # its scheduler (a forked child) went with it
        seen |= recovery.descendants(proc.pid)
        assert not [p for p in recovery.alive(seen) if p not in recovery.descendants(proc.pid) and p != proc.pid]

        # 2. kill -9 of the web process: runall starts it again instead of stopping everything.
        web = _web_pid(proc.pid)
        os.kill(web, signal.SIGKILL)
        started = time.monotonic()
        recovery.wait(lambda: _web_pid(proc.pid) not in (None, web) and _http_ok(port), TARGET_SECONDS, "the web process to come back")
        assert proc.poll() is None, "runall stopped"
        print(f"web back after {time.monotonic() - started:.1f} s")

        # 3. kill -9 of the embedded Redis: runall (its only owner) starts it again; workers take
        # renders within seconds of it answering, and none of them started a server of its own.
        seen |= recovery.descendants(proc.pid)
        back, take = recovery.kill_redis(var_dir)
        assert back < TARGET_SECONDS and take < TARGET_SECONDS, (back, take)
        time.sleep(2)
        assert len(_redis_servers(var_dir)) == 1, _redis_servers(var_dir)
        seen |= recovery.descendants(proc.pid)
    finally:
        seen |= recovery.descendants(proc.pid)
        recovery.stop_runall(proc)
    time.sleep(1)
    assert recovery.alive(seen) == [], f"left behind after runall stopped: {recovery.alive(seen)}"
    assert _redis_servers(var_dir) == []


def test_after_an_external_redis_outage_renders_are_taken_within_seconds(recovery, tmp_path):
    """REDIS_URL set: runall owns no Redis. The server is killed, stays down 8 s and is started
    again (its own supervisor's job): a render is taken within 10 s of Redis answering, and no
    process started a Redis of its own meanwhile."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    redis_proc = recovery.start_external_redis(var_dir)
    proc = recovery.start_runall(var_dir, recovery.free_port(), tmp_path / "runall.log")
    try:
        recovery.time_to_take(var_dir, time.monotonic(), timeout=300)
        redis_proc, take = recovery.external_redis_outage(var_dir, redis_proc, 8.0)
        assert take < TARGET_SECONDS, f"a render was taken {take:.1f} s after Redis came back"
        assert proc.poll() is None
        assert _redis_servers(var_dir) == []  # no embedded server appeared
    finally:
        recovery.stop_runall(proc)
        redis_proc.kill()
        redis_proc.wait()
