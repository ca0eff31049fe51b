"""Load on loopback: N people uploading audio and starting batches while 200 websockets watch,
then one 1 GiB upload streamed to the web process. Bounded in count and time; stops by itself.

    .venv/bin/python bench/load.py [--users 4] [--sockets 200] [--batches 2] [--seconds 120] [--upload-gib 1]

Everything runs in a temporary VAR_DIR (SQLite, embedded Redis, media): a uvicorn web server on a free
127.0.0.1 port and one render worker. Prints requests/s, p95 latencies, errors and the peak RSS
of the web and worker processes, as a Markdown table (paste it into docs/RELIABILITY.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

# a bench/queue.py would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import base64
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from config import webserver  # noqa: E402

MEDIA = REPO.parent / "shared" / "media"
PY = sys.executable
PASSWORD = "load-test-password-9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RSS:
    """Peak resident memory of a process tree, sampled every 0.2 s."""

    def __init__(self, pid: int):
        import psutil

        self.proc, self.peak, self.samples, self._stop = psutil.Process(pid), 0, [], threading.Event()
        self.by_name: dict[str, int] = defaultdict(int)  # peak per process of the tree
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> int:
        total = 0
        try:
            for p in [self.proc, *self.proc.children(recursive=True)]:
                rss = p.memory_info().rss
                name = p.name()
                self.by_name[name] = max(self.by_name[name], rss)
                total += rss
        except Exception:
            pass
        return total

    def _run(self):
        while not self._stop.wait(0.2):
            value = self.now()
            self.samples.append(value)
            self.peak = max(self.peak, value)

    def stop(self):
        self._stop.set()


def setup(var: Path, users: int) -> None:
    script = f"""
import shutil
from pathlib import Path
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import TemporaryUploadedFile
from accounts.models import Membership, Team, User
from jobs import services
team = Team.objects.create(name="Load", slug="load")
for i in range({users}):
    u = User.objects.create_user(email=f"user{{i}}@load.example", password="{PASSWORD}")
    EmailAddress.objects.create(user=u, email=u.email, verified=True, primary=True)
    Membership.objects.create(team=team, user=u, role="owner" if i == 0 else "member")
for name in ("face_square_1.mp4", "face_square_2.mp4"):
    src = Path("{MEDIA}") / name
    up = TemporaryUploadedFile(name, "video/mp4", src.stat().st_size, None)
    shutil.copyfileobj(open(src, "rb"), up.file); up.file.flush(); up.seek(0)
    t = services.template_upload(team=team, user=None, uploaded_file=up, name=name)
    print("TEMPLATE", t.pk)
"""
    env = bench_env(var)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    out = subprocess.run([PY, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return re.findall(r"TEMPLATE (\S+)", out.stdout)


def bench_env(var: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_ENV="test", VAR_DIR=str(var), MEDIA_ROOT=str(var / "media"), LIPSYNC_DEVICE="cpu",
               ACCOUNT_EMAIL_VERIFICATION="none", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    return env


class Stats:
    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def add(self, name: str, seconds: float, ok: bool):
        with self.lock:
            self.latency[name].append(seconds)
            if not ok:
                self.errors[name] += 1


def login(base: str, email: str):
    import requests

    s = requests.Session()
    s.get(f"{base}/accounts/login/", timeout=30)
    r = s.post(f"{base}/accounts/login/", data={"login": email, "password": PASSWORD,
                                                "csrfmiddlewaretoken": s.cookies["csrftoken"]},
               headers={"Referer": f"{base}/accounts/login/"}, timeout=30)
    assert "sessionid" in s.cookies, f"login failed for {email}: {r.status_code}"
    return s


def person(base: str, email: str, templates: list[str], audio: bytes, batches: int, stats: Stats, jobs: list, stop_at: float):
    s = login(base, email)
    for n in range(batches):
        if time.monotonic() > stop_at:
            return
        t0 = time.monotonic()
        r = s.post(f"{base}/jobs/new/", data={"templates": templates, "priority": "default", "title": f"{email} #{n}",
                                              "csrfmiddlewaretoken": s.cookies["csrftoken"]},
                   files={"audio": ("speech.wav", audio, "audio/wav")},
                   headers={"X-Requested-With": "XMLHttpRequest", "Referer": base}, timeout=120)
        stats.add("POST /jobs/new/ (upload + batch)", time.monotonic() - t0, r.status_code == 201)
        if r.status_code == 201:
            jobs.append(r.json()["id"])
        for path in ("/", "/jobs/", "/templates/", f"/jobs/{jobs[-1]}/" if jobs else "/gallery/"):
            t0 = time.monotonic()
            r = s.get(base + path, timeout=60)
            stats.add("GET pages", time.monotonic() - t0, r.status_code == 200)


async def watch(port: int, path: str, cookie: str, counts: list, stop_at: float, connected: list, dropped: list):
    """A minimal websocket client: handshake, answer pings, count the server's messages."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                      f"Cookie: sessionid={cookie}\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    except Exception:
        counts.append(-1)
        return
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        counts.append(-1)
        return
    connected.append(1)
    messages = 0
    try:
        while time.monotonic() < stop_at:
            try:
                first = await asyncio.wait_for(reader.readexactly(2), max(0.1, stop_at - time.monotonic()))
            except TimeoutError:
                break
            length = first[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)
            opcode = first[0] & 0x0F
            if opcode == 0x8:  # close
                dropped.append(1)
                break
            if opcode == 0x9:  # ping: a client must answer with a masked pong
                mask = os.urandom(4)
                writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                continue
            messages += 1
    except Exception:
        dropped.append(1)
    counts.append(messages)
    writer.close()


def watchers(port: int, jobs: list[str], cookie: str, n: int, stop_at: float, result: dict):
    async def main():
        counts, connected, dropped = [], [], []
        await asyncio.gather(*(watch(port, f"/ws/jobs/{jobs[i % len(jobs)]}/", cookie, counts, stop_at, connected, dropped)
                               for i in range(n)))
        result.update(connected=len(connected), failed=sum(1 for c in counts if c < 0), dropped=len(dropped),
                      messages=sum(c for c in counts if c > 0))

    asyncio.run(main())


def big_upload(port: int, session, gib: float, web: RSS) -> dict:
    """Stream a generated multipart body of `gib` GiB; watch the web process's memory."""
    boundary = "----mouthpiece-load-" + os.urandom(8).hex()
    csrf = session.cookies["csrftoken"]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = int(gib * 1024**3)
    chunk = os.urandom(1024 * 1024)

    def body():
        yield head
        sent = 0
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            sent += len(piece)
            yield piece
        yield tail

    before = web.now()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.monotonic()
    conn.putrequest("POST", "/templates/upload/")
    for k, v in {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(head) + size + len(tail)),
                 "Cookie": f"sessionid={session.cookies['sessionid']}; csrftoken={csrf}", "X-Requested-With": "XMLHttpRequest",
                 "Referer": f"http://127.0.0.1:{port}/templates/"}.items():
        conn.putheader(k, v)
    conn.endheaders()
    web.peak = before  # the sampler thread records the peak while the body streams
    for piece in body():
        conn.send(piece)
    response = conn.getresponse()
    text = response.read().decode(errors="replace")
    elapsed = time.monotonic() - t0
    peak_during = max(web.peak, web.now())
    return {"status": response.status, "message": text[:200], "seconds": elapsed, "rss_before": before, "rss_peak": peak_during}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--batches", type=int, default=2, help="batches per person")
    parser.add_argument("--seconds", type=float, default=150, help="hard cap of the load phase")
    parser.add_argument("--upload-gib", type=float, default=1.0, help="0 skips the big upload")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from testutil import cut_audio

    var = Path(tempfile.mkdtemp(prefix="mp-load-"))
    procs = []
    try:
        templates = setup(var, args.users)
        audio = cut_audio(MEDIA / "speech_en_1.wav", var / "speech.wav", 1.5).read_bytes()
        port = free_port()
        env = bench_env(var)
        web = subprocess.Popen(webserver.command("127.0.0.1", port),
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(var / "web.log", "wb"), start_new_session=True)
        worker = subprocess.Popen([PY, "manage.py", "renderworker", "--name", "load-worker", "--device", "cpu"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(var / "worker.log", "wb"), start_new_session=True)
        procs += [web, worker]
        base = f"http://127.0.0.1:{port}"
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=2).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not start; see " + str(var / "web.log"))
            time.sleep(0.3)
        web_rss, worker_rss = RSS(web.pid), RSS(worker.pid)

        stats, jobs = Stats(), []
        stop_at = time.monotonic() + args.seconds
        watcher_session = login(base, "user0@load.example")
        # One batch first, so the sockets have jobs to watch; then everyone at once.
        person(base, "user0@load.example", templates, audio, 1, stats, jobs, stop_at)
        ws_result: dict = {}
        ws_thread = threading.Thread(target=watchers, args=(port, jobs, watcher_session.cookies["sessionid"], args.sockets,
                                                            stop_at, ws_result), daemon=True)
        t0 = time.monotonic()
        if jobs and args.sockets:
            ws_thread.start()
        threads = [threading.Thread(target=person,
                                    args=(base, f"user{i}@load.example", templates, audio, args.batches, stats, jobs, stop_at))
                   for i in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        load_seconds = time.monotonic() - t0
        if ws_thread.is_alive():
            ws_thread.join(timeout=max(0.0, stop_at - time.monotonic()) + 30)

        upload = big_upload(port, watcher_session, args.upload_gib, web_rss) if args.upload_gib > 0 else None
        web_rss.stop()
        worker_rss.stop()

        requests_total = sum(len(v) for v in stats.latency.values())
        mib = 1024 * 1024
        print(f"\n## bench/load.py — {args.users} people, {args.sockets} websockets, {args.batches} batches each, loopback\n")
        print("| figure | value |\n|---|---|")
        print(f"| HTTP requests (people) | {requests_total} in {load_seconds:.1f} s = {requests_total / load_seconds:.1f} req/s |")
        for name, values in sorted(stats.latency.items()):
            print(f"| p95 {name} | {p95(values) * 1000:.0f} ms (n={len(values)}, errors {stats.errors[name]}) |")
        print(f"| websockets connected / refused / dropped early | {ws_result.get('connected', 0)} / "
              f"{ws_result.get('failed', args.sockets)} / {ws_result.get('dropped', 0)} |")
        print(f"| websocket messages received | {ws_result.get('messages', 0)} |")
        print(f"| peak RSS web (uvicorn) | {web_rss.peak / mib:.0f} MiB "
              f"({', '.join(f'{n} {v / mib:.0f}' for n, v in web_rss.by_name.items())}) |")
        print(f"| peak RSS render worker | {worker_rss.peak / mib:.0f} MiB |")
        if upload:
            print(f"| {args.upload_gib:g} GiB upload | HTTP {upload['status']} after {upload['seconds']:.1f} s; web RSS "
                  f"{upload['rss_before'] / mib:.0f} → peak {upload['rss_peak'] / mib:.0f} MiB |")
            print(f"\nupload answer: {upload['message']}")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 15)
                p.wait(20)
            except Exception:
                try:
                    os.killpg(p.pid, 9)
                except Exception:
                    pass
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
