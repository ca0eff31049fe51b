"""Engine speed benchmark: real-time factor by stage vs the plain decode+encode floor.

    .venv/bin/python bench/engine.py [--quick] [--engine default] [--device cpu]

For each template in ../shared/media (plus a 720x1280 downscale of the portrait clip, made
in a temp dir) and each speech file: preparation time vs template duration (uncached), then
a render of the prepared template with each speech file.  RTF = render seconds / audio
seconds.  The floor decodes the same template frames (same ping-pong order) and encodes them
with the same settings, without touching them.  Peak RSS is the process's maximum.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = REPO.parent / "shared" / "media"


def floor_seconds(tpl, n_out, fps, out_path) -> float:
    """Decode + encode the frames a render would show, unchanged."""
    from lipsync import align
    from lipsync.media import VideoWriter, read_frames
    from lipsync.spool import FrameSpool

    idx = align.template_indices(n_out, fps, tpl.n_frames, tpl.fps)
    t = time.perf_counter()
    frames = FrameSpool(read_frames(tpl.video_path, fps=tpl.fps),
                        keep=align.frames_shown_again(idx, tpl.n_frames))
    with VideoWriter(out_path, tpl.width_px, tpl.height_px, fps) as w:
        for i in idx:
            try:
                w.write(frames.get(int(i)))
            except IndexError:
                w.write(frames.get(len(frames) - 1))
    frames.close()
    return time.perf_counter() - t


def make_720p(src, dst):
    import cv2

    from lipsync.media import VideoWriter, read_frames
    from lipsync.probing import probe

    info = probe(src)
    with VideoWriter(dst, 720, 1280, info.fps, preset="ultrafast", crf=16) as w:
        for f in read_frames(src):
            w.write(cv2.resize(f, (720, 1280), interpolation=cv2.INTER_AREA))
    return dst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one speech file per template")
    ap.add_argument("--engine", default="default")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    from lipsync.audio import analyse_audio
    from lipsync.engines import load_engine
    from lipsync.prepare import prepare_template
    from lipsync.probing import probe

    work = Path(tempfile.mkdtemp(prefix="lipsync-bench-"))
    templates = sorted(MEDIA.glob("*.mp4"))
    templates.append(make_720p(MEDIA / "portrait_hevc_1080x1920.mp4", work / "portrait_720x1280.mp4"))
    speech = sorted(MEDIA.glob("speech_*.wav")) + [MEDIA / "portrait_hevc_audio.wav"]
    if a.quick:
        speech = speech[:1]
    engine = load_engine(a.engine, device=a.device)
    if engine.name != a.engine:  # measure the engine named, never a stand-in
        raise SystemExit(f"asked for engine {a.engine!r} but loaded {engine.name!r}")
    audios, feature_s = {}, {}
    for p in speech:
        t = time.perf_counter()
        audios[p] = analyse_audio(p, device=a.device)
        feature_s[p] = time.perf_counter() - t
    for p, au in audios.items():
        print(f"audio analysis incl. Whisper features, {p.name}: {feature_s[p]:.2f} s for "
              f"{au.duration:.1f} s of audio (once per batch, shared by every template)")
    # warm-up: one-time imports (torch, scipy.signal) and model loading are not per-render costs
    warm = prepare_template(MEDIA / "face_square_3.mp4", cache_dir=work)
    engine.render(warm, audios[speech[0]], work / "warm.mp4")

    print(f"engine={a.engine} device={a.device}")
    print("| template | size | prep s / duration | audio | RTF total | decode | render | "
          "encode | floor RTF | total / floor | CPU-s per audio-s | floor CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for tp in templates:
        info = probe(tp)
        t = time.perf_counter()
        tpl = prepare_template(tp, cache_dir=work, use_cache=False)
        prep = time.perf_counter() - t
        for sp in speech:
            au = audios[sp]
            out = work / "out.mp4"
            t, c = time.perf_counter(), time.process_time()
            res = engine.render(tpl, au, out)
            total, cpu = time.perf_counter() - t, time.process_time() - c
            c = time.process_time()
            fl = floor_seconds(tpl, res.frames, res.fps, work / "floor.mp4")
            fl_cpu = time.process_time() - c
            d = au.duration
            tm = res.timings
            print(f"| {tp.name} | {info.width}x{info.height} | {prep / info.duration:.2f} | "
                  f"{sp.name} ({d:.1f} s) | {total / d:.3f} | {tm['decode'] / d:.3f} | "
                  f"{tm['render'] / d:.3f} | {tm['encode'] / d:.3f} | {fl / d:.3f} | "
                  f"{total / fl:.2f} | {cpu / d:.3f} | {fl_cpu / d:.3f} |", flush=True)
    import os

    print(f"load average at the end: {os.getloadavg()} on {os.cpu_count()} CPUs")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
