"""Lip-sync quality on real footage: self-reenactment per clip, sync on new-language audio.

    .venv/bin/python bench/quality.py                      # the held-out clips (docs/QUALITY.md)
    .venv/bin/python bench/quality.py --clips train/edtalk_uncrop_Obama.mp4 --variants default

Self-reenactment (lipsync.evaluate): the template is the first half of a real clip with its
own audio, the driving audio is the second half, the ground truth is the second half's mouth.
Variants on the same cases:
  default     the engine as shipped (speaker-adapted when the first half speaks >= 1.5 s)
  generic     the default engine with adaptation off
  warp-only   the default engine's shapes, no pasted template mouths
  energy      the explicit loudness engine
  static      the template itself, unchanged
  truth       the real second half, re-encoded (the ceiling of the measure)
  oracle      the default renderer given the real second half's tracked lip shapes instead
              of predicted ones: what the renderer keeps of perfect shapes (the model's
              share of the gap is default against oracle, the renderer's oracle against truth)
Sync: each of the three square templates driven by en, zh and de speech; z-score of mouth
motion vs speech-energy change against shifted audio (lipsync.sync).
Which clips the committed model was trained on: lipsync/weights/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = REPO.parent / "shared" / "media"

VARIANTS = ("default", "generic", "warp-only", "energy", "static", "truth", "oracle")
SYNC_AUDIO = {"en": "speech_en_1.wav", "zh": "speech_zh_news.wav", "de": "speech_de_24bit.wav"}
SYNC_TEMPLATES = ("face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4")


def _engine(variant):
    from lipsync.engines import load_engine

    if variant == "generic":
        return load_engine("default", device="cpu", adapt=False)
    if variant == "warp-only":
        return load_engine("default", device="cpu", texture=False)
    return load_engine(variant, device="cpu")


def _oracle_engine(tpl, second):
    """The default engine with its speech read-out replaced by the tracked shapes of the real
    second half (a measuring device, never a runtime path)."""
    import numpy as np

    from lipsync import shape as S
    from lipsync.engines.default import DefaultEngine
    from lipsync.prepare import prepare_template

    truth = prepare_template(second, cache_dir=Path(second).parent / "oracle")

    class Oracle(DefaultEngine):
        def shape_track(self, template, audio, fps, n_frames):
            shapes = S.to_face(truth.landmarks)
            coeffs = self.model().basis.encode(shapes, template.shape_mean.astype(np.float64))
            pad = max(0, n_frames - len(coeffs))
            return np.concatenate([coeffs, np.repeat(coeffs[-1:], pad, 0)])[:n_frames]

    return Oracle(device="cpu")


def reenact(clip: str, variants) -> dict:
    from lipsync.audio import analyse_audio
    from lipsync.evaluate import compare_mouths, cut_halves, fidelity
    from lipsync.media import VideoWriter, decode_audio, read_frames
    from lipsync.prepare import prepare_template
    from lipsync.probing import probe

    rows = {}
    with tempfile.TemporaryDirectory() as d:
        first, second, fps = cut_halves(MEDIA / clip, d)
        tpl = prepare_template(first, cache_dir=d)
        audio = analyse_audio(second)
        for v in variants:
            out = Path(d) / f"{v}.mp4"
            t = time.perf_counter()
            if v in ("static", "truth"):
                src = first if v == "static" else second
                info = probe(src)
                with VideoWriter(out, info.width, info.height, fps, audio=decode_audio(second)) as w:
                    for rgb in read_frames(src):
                        w.write(rgb)
            elif v == "oracle":
                _oracle_engine(tpl, second).render(tpl, audio, out, fps=fps)
            else:
                _engine(v).render(tpl, audio, out, fps=fps)
            row = compare_mouths(out, second)
            row["psnr_outside"] = fidelity(out, tpl)["psnr_outside"] if v != "truth" else float("nan")
            row["seconds"] = time.perf_counter() - t
            rows[v] = row
        rows["_adapted"] = tpl.speaker_weights is not None
        rows["_speech"] = tpl.speech_seconds
    return rows


def sync_cases(variants) -> list[tuple]:
    from lipsync.audio import analyse_audio
    from lipsync.evaluate import sync_score
    from lipsync.prepare import prepare_template

    out = []
    with tempfile.TemporaryDirectory() as d:
        for t in SYNC_TEMPLATES:
            tpl = prepare_template(MEDIA / t, cache_dir=d)
            for lang, a in SYNC_AUDIO.items():
                audio = analyse_audio(MEDIA / a)
                for v in variants:
                    p = Path(d) / f"{Path(t).stem}-{lang}-{v}.mp4"
                    _engine(v).render(tpl, audio, p)
                    s = sync_score(p, MEDIA / a)
                    out.append((t, lang, v, s["r"], s["lag"], s["z"]))
                    print(f"sync {t:24s} {lang} {v:10s} r {s['r']:.2f} lag {s['lag']:+d} z {s['z']:.1f}",
                          flush=True)
    return out


def _mean(values) -> float:
    """Mean of the finite values (nan when there are none, e.g. the truth's PSNR)."""
    import numpy as np

    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def main(argv=None) -> int:
    from lipsync import corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", nargs="*", default=corpus.HOLDOUT)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--no-sync", action="store_true")
    a = ap.parse_args(argv)
    from lipsync.mouth_model import MouthModel

    model = MouthModel.load()
    seen = set(model.info.get("trained_on", []))
    print("variant     clip                                      open  best(lag) width motion nRMSE PSNRout jitter(x truth)")
    means: dict[str, list] = {}
    for clip in a.clips:
        rows = reenact(clip, a.variants)
        tag = "TRAINED ON" if clip in seen else "held out"
        print(f"# {clip} ({tag}; first half speech {rows['_speech']:.1f} s, adapted: {rows['_adapted']})")
        for v in a.variants:
            r = rows[v]
            means.setdefault(v, []).append(r)
            print(f"{v:11s} {Path(clip).name:40s} {r['opening']:5.2f} {r['opening_best']:5.2f}({r['best_lag']:+d}) "
                  f"{r['width']:5.2f} {r['motion']:6.2f} {r['nrmse']:5.2f} {r['psnr_outside']:6.1f} "
                  f"{r['jitter_ratio']:5.2f}", flush=True)

    print("mean over clips:")
    for v, rs in means.items():
        m = {k: _mean([r[k] for r in rs]) for k in ("opening", "width", "motion", "nrmse", "psnr_outside",
                                                 "jitter_ratio")}
        print(f"{v:11s} opening {m['opening']:.2f} width {m['width']:.2f} motion {m['motion']:.2f} "
              f"nRMSE {m['nrmse']:.2f} PSNR-outside {m['psnr_outside']:.1f} jitter x truth {m['jitter_ratio']:.2f}")
    if not a.no_sync:
        cases = sync_cases([v for v in a.variants if v in ("default", "energy")])
        for v in ("default", "energy"):
            zs = [c[5] for c in cases if c[2] == v]
            if zs:
                print(f"sync {v}: z >= 2 in {sum(z >= 2 for z in zs)} of {len(zs)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
