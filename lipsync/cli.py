"""Command line: python -m lipsync render|prepare|evaluate|probe ...

Exit status 0 on success; on a user-facing error, 1 (bad input: 2) with ONE line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


class _Bar:
    """A one-line progress bar on stderr: 'rendering  [#####.....]  52%'."""

    def __init__(self, stream=None, enabled=True):
        self.stream, self.enabled = stream or sys.stderr, enabled
        self.last = None

    def __call__(self, fraction: float, stage: str):
        if not self.enabled:
            return
        pct = int(fraction * 100)
        key = (stage, pct)
        if key == self.last:
            return
        self.last = key
        n = int(fraction * 30)
        self.stream.write(f"\r{stage:<10} [{'#' * n}{'.' * (30 - n)}] {pct:3d}%")
        self.stream.flush()

    def done(self):
        if self.enabled and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def _quiet_native_logs():
    """Send native stderr (mediapipe/absl/TF-lite chatter) to /dev/null and keep Python's
    sys.stderr on the real one, so the user sees only our progress and error lines."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
    except OSError:
        pass


def cmd_render(a) -> int:
    from . import render_file

    bar = _Bar(stream=sys.stderr, enabled=not a.quiet)
    t = time.perf_counter()
    try:
        res = render_file(a.template, a.audio, a.out, engine=a.engine, device=a.device,
                          fps=a.fps, progress=bar, **_engine_options(a))
    finally:
        bar.done()
    if not a.quiet:
        print(f"wrote {res.path}: {res.frames} frames at {res.fps:g} fps, {res.width}x"
              f"{res.height}, face in {res.face_fraction:.0%} of frames, "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    if a.json:
        print(json.dumps(res.__dict__, default=float))
    return 0


def _engine_options(a) -> dict:
    opts = {}
    if getattr(a, "checkpoint", None):
        opts["checkpoint"] = a.checkpoint
    return opts


def cmd_prepare(a) -> int:
    from .prepare import prepare_template

    bar = _Bar(enabled=not a.quiet)
    try:
        tpl = prepare_template(a.template, cache_dir=a.cache_dir, progress=bar,
                               use_cache=not a.force)
    finally:
        bar.done()
    fitness = tpl.fitness
    print(json.dumps({"frames": tpl.n_frames, "fps": tpl.fps, "face_fraction": tpl.face_fraction,
                      "width": tpl.width_px, "height": tpl.height_px,
                      "speech_seconds": round(tpl.speech_seconds, 2),
                      "speaker_adapted": tpl.speaker_weights is not None,
                      "fitness": {"ok": fitness["ok"], "notes": fitness["notes"],
                                  "texts": fitness["texts"]},
                      "seconds": round(tpl.timings.get("prepare", 0.0), 3)}))
    return 0


def cmd_evaluate(a) -> int:
    from .evaluate import sync_score

    s = sync_score(a.video, audio=a.audio)
    out = {"sync_r": s["r"], "sync_lag": s["lag"], "sync_z": s["z"]}
    if a.template:
        from .evaluate import fidelity
        from .prepare import prepare_template

        out.update(fidelity(a.video, prepare_template(a.template)))
    print(json.dumps(out))
    return 0


def cmd_probe(a) -> int:
    from .probing import probe

    print(json.dumps(probe(a.file).__dict__))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lipsync", description="Mouthpiece lip-sync engine")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="lip-sync a template video to an audio file")
    r.add_argument("--template", required=True)
    r.add_argument("--audio", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--engine", default="default",
                   help="default (speech features -> lip shapes), energy (loudness only, for "
                        "comparisons) or wav2lip (needs --checkpoint)")
    r.add_argument("--device", choices=["cpu", "cuda"], default=None)
    r.add_argument("--fps", type=float, default=None)
    r.add_argument("--checkpoint", default=None, help="model checkpoint (wav2lip engine)")
    r.add_argument("--json", action="store_true", help="print the RenderResult as JSON")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_render)
    pr = sub.add_parser("prepare", help="prepare (and cache) a template video")
    pr.add_argument("template")
    pr.add_argument("--cache-dir", default=None)
    pr.add_argument("--force", action="store_true", help="ignore an existing cache")
    pr.add_argument("-q", "--quiet", action="store_true")
    pr.set_defaults(func=cmd_prepare)
    e = sub.add_parser("evaluate", help="audio-visual sync of a rendered video")
    e.add_argument("video")
    e.add_argument("--audio", default=None)
    e.add_argument("--template", default=None, help="also report fidelity vs this template")
    e.set_defaults(func=cmd_evaluate)
    pb = sub.add_parser("probe", help="describe a media file as JSON")
    pb.add_argument("file")
    pb.set_defaults(func=cmd_probe)
    return p


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if not os.environ.get("LIPSYNC_VERBOSE"):
        _quiet_native_logs()
    from .errors import BadInputError, LipsyncError

    try:
        return a.func(a)
    except BadInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except LipsyncError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # e.g. unknown engine name
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.strerror or e} ({os.path.basename(str(e.filename or ''))})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
