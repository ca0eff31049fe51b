"""Measure the motion model honestly and print the QUALITY.md tables.

    python -m lipsync.quality_report            # trains the leave-one-clip-out models if missing
                                                # (var/motion-loo-<clip>.pt, --steps 800 each)
    python -m lipsync.quality_report --render   # also full self-reenactment via lipsync.evaluate

Real clips (model level): for each clip k, a model trained WITHOUT clip k predicts the mouth
from the audio of the clip's second half; Pearson r (lag 0) against FaceMesh's measured
opening / width on the real second half, at the video's frame rate.
Baselines on the same frames: loudness (frame RMS in dB: "a mouth that opens with
loudness") and template playback (the first half's own measured mouth replayed, which is
what a static/looping template shows).
Synthetic languages: held-out espeak-ng utterances (sentences never used in training,
different seed) against their phoneme-derived viseme targets; this measures how well the
model recovers the viseme table from audio in each language, not real faces.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from . import dataset

VAR = dataset.REPO / "var"

# Held-out text: none of these sentences is in dataset.SENTENCES.
EVAL_SENTENCES = {
    "en": ["My brother plays the piano every evening.", "Would you open the box for me?",
           "The weather was cold and windy.", "Maybe we should wait a moment.",
           "I hope you enjoyed the movie."],
    "cmn": ["我明天要去上海开会。", "这个苹果很便宜。", "你吃饭了吗？", "请把窗户关上。",
            "北方的冬天非常冷。", "我的朋友住在北京。"],
    "de": ["Morgen besuche ich meine Oma.", "Wo ist der Bahnhof, bitte?"],
    "es": ["Mi hermano vive en Madrid.", "¿Puedes abrir la puerta?"],
    "fr": ["Mon père boit un café.", "Où vas-tu ce matin?"],
}


def pearson(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def loo_model_path(clip):
    return VAR / f"motion-loo-{os.path.splitext(clip)[0]}.pt"


def ensure_loo_models(steps=800):
    from . import train

    for clip in dataset.REAL_CLIPS:
        path = loo_model_path(clip)
        if not path.exists():
            print(f"training leave-one-out model without {clip} ...")
            net, info = train.train(holdout=[clip], steps=steps, log=lambda *a, **k: None)
            train.save(net, info, path)


def real_clip_rows(model_for):
    """[(clip, r_open, r_width, r_loud, r_template, n_frames)] for each real clip."""
    import av

    from .audio import _decode, analyse_samples

    rows = []
    for clip in dataset.REAL_CLIPS:
        path = dataset.MEDIA / clip
        with av.open(str(path)) as c:
            fps = float(c.streams.video[0].average_rate)
        times, opening, width, valid = _series(clip)
        n = len(times)
        half = n // 2
        t_half = times[half]
        samples = _decode(path)
        second = samples[int(round(t_half * 16000)):]
        audio = analyse_samples(second)
        track = model_for(clip).predict(audio, fps=fps, n_frames=n - half)
        meas_o, meas_w = opening[half:], width[half:]
        energy = audio.features["energy"]
        idx = np.clip(np.round((times[half:] - t_half) * 100).astype(int), 0, len(energy) - 1)
        loud = energy[idx]
        template = opening[:half][: n - half]
        m = min(len(template), len(meas_o))
        rows.append((clip, pearson(track.opening, meas_o), pearson(track.width, meas_w),
                     pearson(loud, meas_o), pearson(template[:m], meas_o[:m]), n - half))
    return rows


def _series(clip):
    """Cached FaceMesh series of a real clip: (times, opening, width, valid)."""
    return dataset.real_clip(clip, series=True)


def synthetic_rows(model, *, n=12, seed=1234):
    """[(lang, r_open, r_width, r_loud, n_utts)] on held-out espeak speech."""
    from .audio import AnalysedAudio, compute_features

    rows = []
    for i, lang in enumerate(EVAL_SENTENCES):
        rng = np.random.default_rng([seed, i])
        ro, rw, rl = [], [], []
        for _ in range(n):
            feats, targ, _, raw = dataset.synthetic_example(
                lang, rng, sentences=EVAL_SENTENCES[lang], pseudo=0.0, augment=True,
                return_samples=True)
            audio = AnalysedAudio(sha256="", samples=raw, sample_rate=16000,
                                  duration=raw.size / 16000, features=compute_features(raw))
            pred = model.predict_steps(audio)
            ro.append(pearson(pred[:, 0], targ[:, 0]))
            rw.append(pearson(pred[:, 1], targ[:, 1]))
            rl.append(pearson(audio.features["energy"], targ[:, 0]))
        rows.append((lang, float(np.mean(ro)), float(np.mean(rw)), float(np.mean(rl)), n))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lipsync.quality_report")
    p.add_argument("--render", action="store_true",
                   help="also run lipsync.evaluate.self_reenactment (needs the render engine)")
    p.add_argument("--final", default=None, help="weights for the synthetic-language table "
                   "(default: lipsync/weights/motion.pt)")
    p.add_argument("--synth-only", default=None,
                   help="optional model trained on synthetic speech only (no real clip at all)")
    p.add_argument("--no-cmn", default=None,
                   help="optional model trained without Mandarin, for a cross-language row")
    a = p.parse_args(argv)

    from .motion import load_motion_model

    ensure_loo_models()
    models = {c: load_motion_model(loo_model_path(c)) for c in dataset.REAL_CLIPS}
    rows = real_clip_rows(lambda c: models[c])
    print("## Real clips, model level (leave-one-clip-out), Pearson r at lag 0\n")
    print("| clip | frames | r opening | r width | loudness baseline r | template playback r |")
    print("|---|---|---|---|---|---|")
    for clip, ro, rw, rl, rt, n in rows:
        print(f"| {clip} | {n} | {ro:.2f} | {rw:.2f} | {rl:.2f} | {rt:.2f} |")
    mean = np.mean([[r[1], r[2], r[3], r[4]] for r in rows], 0)
    print(f"| **mean** | | **{mean[0]:.2f}** | {mean[1]:.2f} | {mean[2]:.2f} | {mean[3]:.2f} |\n")
    if a.synth_only:
        m = load_motion_model(a.synth_only)
        print("Model trained on synthetic espeak-ng speech only (no real clip in training):\n")
        print("| clip | frames | r opening | r width | loudness baseline r | template playback r |")
        print("|---|---|---|---|---|---|")
        srows = real_clip_rows(lambda c: m)
        for clip, ro, rw, rl, rt, n in srows:
            print(f"| {clip} | {n} | {ro:.2f} | {rw:.2f} | {rl:.2f} | {rt:.2f} |")
        mean = np.mean([[r[1], r[2], r[3], r[4]] for r in srows], 0)
        print(f"| **mean** | | **{mean[0]:.2f}** | {mean[1]:.2f} | {mean[2]:.2f} | "
              f"{mean[3]:.2f} |\n")

    final = load_motion_model(a.final)
    print("## Synthetic held-out espeak-ng speech (phoneme-derived targets), mean r per "
          "utterance\n")
    print("| language | utterances | r opening | r width | loudness baseline r |")
    print("|---|---|---|---|---|")
    for lang, ro, rw, rl, n in synthetic_rows(final):
        print(f"| {lang} | {n} | {ro:.2f} | {rw:.2f} | {rl:.2f} |")
    if a.no_cmn:
        print("\nModel trained without any Mandarin (cross-language generalisation):\n")
        print("| language | utterances | r opening | r width | loudness baseline r |")
        print("|---|---|---|---|---|")
        for lang, ro, rw, rl, n in synthetic_rows(load_motion_model(a.no_cmn)):
            if lang == "cmn":
                print(f"| {lang} | {n} | {ro:.2f} | {rw:.2f} | {rl:.2f} |")

    if a.render:
        render_rows()


def render_rows(clips=None, variants=("model", "loudness", "static")):
    """Full self-reenactment through the default render engine (lipsync.evaluate): the
    leave-one-clip-out model for each clip, and the same renderer driven by loudness
    (lipsync.engines.base.energy_track) or by a constant half-open mouth."""
    try:
        from .engines import load_engine
        from .engines.base import energy_track
        from .evaluate import self_reenactment
    except ImportError as e:
        print(f"\n(render engine not available: {e}; no render rows)")
        return []

    def static(audio, fps, n):
        return np.full(n, 0.08, np.float32), np.zeros(n, np.float32)

    print("\n## Real clips, full render self-reenactment (lipsync.evaluate), Pearson r lag 0\n")
    print("| clip | variant | frames | r opening | r width |")
    print("|---|---|---|---|---|")
    rows = []
    for clip in clips or dataset.REAL_CLIPS:
        for variant in variants:
            opts = {"model": {"motion_weights": str(loo_model_path(clip))},
                    "loudness": {"track": energy_track}, "static": {"track": static}}[variant]
            eng = load_engine("default", device="cpu", **opts)
            res = self_reenactment(str(dataset.MEDIA / clip), eng)
            rows.append((clip, variant, res))
            print(f"| {clip} | {variant} | {res['frames']} | {res['r_opening']:.2f} | "
                  f"{res['r_width']:.2f} |", flush=True)
    for variant in variants:
        vals = [r[2] for r in rows if r[1] == variant]
        print(f"| **mean** | {variant} | | {np.nanmean([v['r_opening'] for v in vals]):.2f} | "
              f"{np.nanmean([v['r_width'] for v in vals]):.2f} |")
    return rows


if __name__ == "__main__":
    main()
