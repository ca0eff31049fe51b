"""A batch on 1 and on 2 render workers: wall time against the sum of single renders.

    .venv/bin/python bench/workers.py [--templates 10] [--workers 1 2]

The batch is the platform's unit of work: one ~10 s voice (portrait_hevc_audio.wav) and
--templates templates (the square clips and a 720x1280 cut of the portrait, repeated). Each
worker is a separate process that loads the engine once and renders its share in turn, with
the thread budget the platform gives it (lipsync.constants.worker_thread_env), which is what
`renderworker --workers N` runs. Templates are prepared (cached) before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = REPO.parent / "shared" / "media"
from lipsync.constants import worker_thread_env  # noqa: E402

AUDIO = MEDIA / "portrait_hevc_audio.wav"


def child(paths: list[str], cache: str, out: str) -> None:
    """Render each template with the audio; print one JSON line of per-render seconds."""
    from lipsync.audio import analyse_audio
    from lipsync.engines import load_engine
    from lipsync.prepare import prepare_template

    engine = load_engine("default", device="cpu")
    audio = analyse_audio(AUDIO)
    times = []
    for k, p in enumerate(paths):
        tpl = prepare_template(p, cache_dir=cache)
        t = time.perf_counter()
        engine.render(tpl, audio, Path(out) / f"{os.getpid()}-{k}.mp4")
        times.append(time.perf_counter() - t)
    print(json.dumps(times), flush=True)


def run(paths, workers, cache, out) -> tuple[float, list[float]]:
    shares = [paths[i::workers] for i in range(workers)]
    env = {**os.environ, **worker_thread_env(workers)}
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--child", cache, out, *share], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for share in shares]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed")
    singles = [x for o in outs for x in json.loads(o.strip().splitlines()[-1])]
    return wall, singles


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[4:], sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    a = ap.parse_args()
    import cv2

    from lipsync.media import VideoWriter, read_frames
    from lipsync.prepare import prepare_template
    from lipsync.probing import probe

    work = Path(tempfile.mkdtemp(prefix="lipsync-workers-"))
    p720 = work / "portrait_720x1280.mp4"
    info = probe(MEDIA / "portrait_hevc_1080x1920.mp4")
    with VideoWriter(p720, 720, 1280, info.fps, preset="ultrafast", crf=16) as w:
        for f in read_frames(MEDIA / "portrait_hevc_1080x1920.mp4"):
            w.write(cv2.resize(f, (720, 1280), interpolation=cv2.INTER_AREA))
    base = [MEDIA / "face_square_1.mp4", MEDIA / "face_square_2.mp4", MEDIA / "face_square_3.mp4", p720]
    paths = []
    for k in range(a.templates):  # distinct files, as a batch of distinct templates would be
        src = base[k % len(base)]
        dst = work / f"t{k}{src.suffix}"
        os.symlink(src, dst)
        paths.append(str(dst))
    cache = str(work / "cache")
    for p in paths:
        prepare_template(p, cache_dir=cache)
    out = work / "out"
    out.mkdir()
    print(f"{a.templates} templates x {probe(AUDIO).duration:.1f} s of audio on {os.cpu_count()} CPUs")
    print("| workers | threads each | batch wall s | sum of its single renders s | wall / that sum | "
          "wall / 1-worker wall |")
    print("|---|---|---|---|---|---|")
    first = None
    for n in a.workers:
        wall, singles = run(paths, n, cache, str(out))
        first = first or wall
        print(f"| {n} | {worker_thread_env(n)['LIPSYNC_THREADS']} | {wall:.1f} | {sum(singles):.1f} | "
              f"{wall / sum(singles):.2f} | {wall / first:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
