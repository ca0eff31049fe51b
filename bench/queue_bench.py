"""Queue and live-progress figures (loopback only, bounded: about a minute on 2 CPU cores).

    python bench/queue_bench.py [--samples 50] [--clients 200] [--templates 10]

Uses its own throw-away VAR_DIR (SQLite + embedded Redis) unless DATABASE_URL/REDIS_URL are set.
Prints:
  1. enqueue -> task start p50/p95 with an idle render worker (a separate process, engine loaded)
  2. progress event -> websocket client p50/p95 (Channels + Redis channel layer, JobConsumer)
  3. N websocket clients on one ASGI application: all stay connected and receive the final state
  4. one batch of T templates: how many times its audio was analysed (want: 1)
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and "queue" would shadow the
# standard library module that asyncio and concurrent.futures import.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def mark_started(enqueued_at: float) -> None:
    """The task the latency probe enqueues: records when a worker started it."""
    import django_rq

    django_rq.get_connection("default").rpush("bench:latency", time.time() - enqueued_at)


def setup_django(var_dir: Path):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_ENV", "test")
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ.setdefault("MEDIA_ROOT", str(var_dir / "media"))
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_enqueue_latency(samples: int) -> list[float]:
    import django_rq

    conn = django_rq.get_connection("default")
    conn.delete("bench:latency")
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup();"
        "import django_rq; from jobs.worker import RenderWorker, engine_get; engine_get('cpu');"
        "qs=[django_rq.get_queue(q) for q in ('high','default','low')];"
        f"RenderWorker(qs, connection=qs[0].connection, name='bench-worker', watchdog=False).work(max_jobs={samples})"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)  # Django + engine start; the worker is idle, blocked on its queues
        queue = django_rq.get_queue("default")
        for _ in range(samples):
            queue.enqueue("bench.queue.mark_started", time.time())
            deadline = time.monotonic() + 10
            while conn.llen("bench:latency") < _ + 1 and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(0.05)  # idle again before the next one
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return [float(x) for x in conn.lrange("bench:latency", 0, -1)]


async def bench_websockets(job, user, clients: int, events: int):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from config.asgi import application
    from jobs import progress

    client = Client()
    await sync_to_async(client.force_login)(user)
    headers = [(b"origin", b"http://testserver"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    comms = [WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=headers) for _ in range(clients)]
    connected = await asyncio.gather(*(c.connect(timeout=30) for c in comms))
    ok = sum(1 for c, _ in connected if c)
    for c in comms:  # snapshot: one render + the job
        await c.receive_json_from(timeout=10)
        await c.receive_json_from(timeout=10)
    render = await sync_to_async(lambda: job.renders.get())()
    latencies = []
    probe = comms[0]
    for i in range(events):
        await sync_to_async(progress.publish, thread_sensitive=False)(
            job.pk, {"type": "render", "id": str(render.pk), "progress": i / events, "final": False})
        message = await probe.receive_json_from(timeout=5)
        latencies.append(time.time() - message["sent_at"])
    await sync_to_async(progress.publish, thread_sensitive=False)(
        job.pk, {"type": "render", "id": str(render.pk), "progress": 1.0, "final": True})
    got_final = 0
    for c in comms:
        while True:
            message = await c.receive_json_from(timeout=20)
            if message.get("final"):
                got_final += 1
                break
    still_open = 0
    for c in comms:
        if await c.receive_nothing(timeout=0.01):
            still_open += 1
        await c.disconnect()
    return ok, latencies, got_final, still_open


def bench_audio_once(team, user, templates: int) -> tuple[int, float]:
    import django_rq
    from django.core.files.uploadedfile import SimpleUploadedFile

    from jobs import services
    from jobs.worker import RenderWorker

    sys.path.insert(0, str(REPO / "tests"))
    from testutil import cut_audio, upload_of

    tmp = Path(tempfile.mkdtemp())
    audio = cut_audio(MEDIA / "speech_en_1.wav", tmp / "a.wav", 2.0)
    first = services.template_upload(team=team, user=user, uploaded_file=upload_of(MEDIA / "face_square_3.mp4"))
    from lipsync.prepare import cache_path, prepare_template

    prepare_template(first.file.path)
    made = [first]
    for _ in range(templates - 1):
        t = services.template_upload(team=team, user=user, uploaded_file=upload_of(MEDIA / "face_square_3.mp4"))
        st = os.stat(first.file.path)
        os.utime(t.file.path, ns=(st.st_mtime_ns, st.st_mtime_ns))
        shutil.copy(cache_path(first.file.path), cache_path(t.file.path))
        made.append(t)
    team.max_concurrent_renders = templates
    team.save()
    conn = django_rq.get_connection("default")
    conn.delete(services.AUDIO_ANALYSES_KEY)
    job = services.job_create(team=team, user=user, audio_file=upload_of(audio), template_ids=[t.pk for t in made])
    started = time.monotonic()
    qs = [django_rq.get_queue(q) for q in ("high", "default", "low")]
    RenderWorker(qs, connection=qs[0].connection, watchdog=False).work(burst=True)
    assert job.renders.filter(status="done").count() == templates, list(job.renders.values_list("status", "error_message"))
    del SimpleUploadedFile
    return int(conn.get(services.AUDIO_ANALYSES_KEY) or 0), time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--templates", type=int, default=10)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="mp-bench-queue-"))
    try:
        setup_django(var_dir)
        import django_rq

        django_rq.get_connection("default").flushdb()
        from accounts.models import Membership, Team, User
        from jobs.models import Job, Render

        team = Team.objects.create(name="Bench", slug="bench")
        user = User.objects.create_user(email="bench@example.com", password="x")
        Membership.objects.create(team=team, user=user, role="owner")

        lat = bench_enqueue_latency(args.samples)
        print(f"enqueue -> start (idle worker, n={len(lat)}): p50 {pct(lat, 50) * 1000:.1f} ms, p95 {pct(lat, 95) * 1000:.1f} ms")

        job = Job.objects.create(team=team, created_by=user, audio="bench.wav")
        Render.objects.create(job=job, team=team, template_name="bench")
        ok, ws_lat, finals, still_open = asyncio.run(bench_websockets(job, user, args.clients, args.events))
        print(f"websocket clients connected: {ok}/{args.clients}; still connected at the end: {still_open}; "
              f"received the final state: {finals}/{args.clients}")
        print(f"progress event -> websocket client (n={len(ws_lat)}, {args.clients} clients listening): "
              f"p50 {pct(ws_lat, 50) * 1000:.1f} ms, p95 {pct(ws_lat, 95) * 1000:.1f} ms, mean {statistics.mean(ws_lat) * 1000:.1f} ms")

        analyses, seconds = bench_audio_once(team, user, args.templates)
        print(f"batch of {args.templates} templates, one worker: audio analysed {analyses} time(s); {seconds:.1f} s for the batch on CPU")
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
