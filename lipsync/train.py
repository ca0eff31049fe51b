"""Offline: fit the lip-shape basis and the generic audio -> shape read-out.

    python -m lipsync.train            # writes lipsync/weights/mouth.npz, prints validation

Data: the real clips of lipsync.corpus (FaceMesh shapes + Whisper features of their own audio),
without lipsync.corpus.HOLDOUT.  The ridge penalty is chosen by leave-one-clip-out over the
training clips only; the held-out clips are measured once at the end and never tuned on.
Deterministic: the same data and library versions give the same weights.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import corpus
from . import shape as S
from .mouth_model import ADAPT_MIN_SECONDS, DEFAULT_WEIGHTS, MouthModel
from .shape import ShapeBasis
from .speech import ENCODER_BLOCKS
from .sync import pearson

FEATURE_DIMS = 128
RIDGES = (1000.0, 3000.0, 10000.0, 30000.0)
ADAPT_STRENGTHS = (30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
OUTPUT_STRENGTHS = (0.0, 0.0003, 0.001, 0.003, 0.01, 0.03)  # 0: the ridge alone


def clip_targets(clip: corpus.Clip):
    """(shapes (T, P, 2), mean (P, 2), valid (T,))."""
    shapes = S.to_face(clip.landmarks)
    valid = clip.has_face.copy()
    return shapes, S.robust_mean(shapes, valid), valid


def shape_scores(pred_coeffs, basis, mean, shapes, valid) -> dict:
    """Opening / width r and opening nRMSE of predicted coefficients vs tracked shapes."""
    pred = basis.decode(pred_coeffs, mean)
    o_p, o_t = S.opening(pred), S.opening(shapes)
    w_p, w_t = S.width(pred), S.width(shapes)
    v = valid
    nrmse = float(np.sqrt(np.mean((o_p[v] - o_t[v]) ** 2)) / max(o_t[v].std(), 1e-6))
    return {"opening": pearson(o_p[v], o_t[v]), "width": pearson(w_p[v], w_t[v]),
            "nrmse": nrmse}


def fit(names, *, log=print, clips=None) -> MouthModel:
    """clips: the corpus clips of ``names`` already loaded (default: load them)."""
    clips = clips or [corpus.load_clip(n) for n in names]
    targets = [clip_targets(c) for c in clips]
    devs = np.concatenate([(s - m)[v] for s, m, v in targets])
    basis = ShapeBasis.fit(devs)
    log(f"basis: {basis.k} components explain "
        f"{(basis.scale ** 2).sum() / (devs.reshape(len(devs), -1).var(0).sum()):.3f} of the variance")
    feats = np.concatenate([c.whisper for c in clips])
    mu, sd = feats.mean(0), feats.std(0) + 1e-3
    z = (feats - mu) / sd
    _, _, vt = np.linalg.svd(z[:: 2] - z[:: 2].mean(0), full_matrices=False)
    proj = vt[:FEATURE_DIMS].T.astype(np.float32)
    model = MouthModel(mu.astype(np.float32), sd.astype(np.float32), proj, None, basis, 0.0,
                       0.0, {})
    Xs, Ys = [], []
    for c, (s, m, v) in zip(clips, targets):
        X = model.design(c.whisper, c.fps, len(s))
        Y = basis.encode(s, m)[v].astype(np.float64)
        # every speaker counts alike: each clip's coefficients are brought to the common
        # spread (people who move their mouth a lot would otherwise dominate the fit)
        Y = Y / (Y.std(0, keepdims=True) + 1e-6) * basis.scale
        Xs.append(X[v].astype(np.float64))
        Ys.append(Y)

    def solve(idx, lam):
        X = np.concatenate([Xs[i] for i in idx])
        Y = np.concatenate([Ys[i] for i in idx])
        reg = lam * np.eye(X.shape[1])
        reg[-1, -1] = 0.0  # the bias is not penalised
        return np.linalg.solve(X.T @ X + reg, X.T @ Y)

    # leave-one-clip-out over the training clips for the ridge penalty
    best = None
    for lam in RIDGES:
        rs = []
        for i in range(len(clips)):
            W = solve([j for j in range(len(clips)) if j != i], lam)
            s, m, v = targets[i]
            rs.append(shape_scores(model.design(clips[i].whisper, clips[i].fps, len(s)) @ W,
                                   basis, m, s, v)["opening"])
        score = float(np.nanmean(rs))
        log(f"ridge {lam:g}: leave-one-clip-out opening r {score:.3f}")
        if best is None or score > best[0]:
            best = (score, lam)
    lam = best[1]
    # Ridge shrinks: its predictions move the mouth far less than people do, which reads as
    # mumbling.  Each coefficient's read-out is scaled so that leave-one-clip-out predictions
    # spread as much as the tracked shapes (correlations are unchanged by this).
    pred = np.concatenate([Xs[i] @ solve([j for j in range(len(clips)) if j != i], lam)
                           for i in range(len(clips))])
    truth = np.concatenate(Ys)
    gain = np.clip(truth.std(0) / np.maximum(pred.std(0), 1e-9), 1.0, 4.0)
    log("read-out gain per coefficient: " + " ".join(f"{g:.2f}" for g in gain))
    model.weights = (solve(range(len(clips)), lam) * gain[None, :]).astype(np.float32)
    model.ridge = lam
    # adaptation strength: for each long training clip, a generic model without that clip,
    # adapted on the clip's first half, scored on its second half
    long = [i for i, c in enumerate(clips) if len(targets[i][0]) / c.fps >= 2 * ADAPT_MIN_SECONDS]
    loo = {i: (solve([j for j in range(len(clips)) if j != i], lam) * gain[None, :]).astype(np.float32)
           for i in long}
    full = model.weights

    def split_score() -> float:
        """Mean opening r on the long clips' second halves, each adapted on its first half
        from the generic model fitted without it."""
        rs = []
        for i in long:
            model.weights = loo[i]
            s, _, v = targets[i]
            rs.append(_half_adapt_score(model, clips[i], s, v)["opening"])
        return float(np.nanmean(rs)) if rs else float("nan")

    # the ridge's strength first (output-space part off), then that part's prior
    for attr, grid in (("adapt_strength", ADAPT_STRENGTHS), ("output_strength", OUTPUT_STRENGTHS)):
        scores = {}
        for value in grid:
            setattr(model, attr, value)
            scores[value] = split_score()
            log(f"{attr} {value:g}: adapted on first halves, opening r on second halves "
                f"{scores[value]:.3f} ({len(long)} clips, generic models without them)")
        setattr(model, attr, max(scores, key=scores.get))
    model.weights = full
    model.info = {"trained_on": list(names), "held_out": list(corpus.HOLDOUT), "ridge": lam,
                  "gain": [float(g) for g in gain],
                  "adapt_strength": model.adapt_strength,
                  "output_strength": model.output_strength, "feature_dims": FEATURE_DIMS,
                  "whisper_blocks": ENCODER_BLOCKS,
                  "loo_opening_r": best[0]}
    return model


def _half_adapt_score(model, clip, shapes, valid, adapt=True, rule=False) -> dict:
    """Adapt on the first half (the template), predict the second (its mean from the first
    half only, as a template would know it).  rule: adapt only where preparation would (at
    least ADAPT_MIN_SECONDS of speech with a face in the first half)."""
    from .audio import speech_activity

    n = len(shapes)
    h = n // 2
    a50 = int(h / clip.fps * 50)
    first_mean = S.robust_mean(shapes[:h], valid[:h])
    W = None
    if rule:
        speech = speech_activity(clip.samples[: int(h / clip.fps * 16000)], clip.fps, h)
        valid_fit = valid[:h] & speech
        adapt = adapt and valid_fit.sum() / clip.fps >= ADAPT_MIN_SECONDS
    if adapt:
        coeffs = model.basis.encode(shapes[:h], first_mean)
        W = model.adapt(clip.whisper[:a50], clip.fps, coeffs, valid[:h])
    pred = model.predict(clip.whisper[a50:], clip.fps, n - h, weights=W)
    return shape_scores(pred, model.basis, first_mean, shapes[h:], valid[h:])


def validate(model: MouthModel, names, *, log=print) -> list[dict]:
    rows = []
    for n in names:
        c = corpus.load_clip(n)
        s, m, v = clip_targets(c)
        gen = _half_adapt_score(model, c, s, v, adapt=False)
        ada = _half_adapt_score(model, c, s, v, adapt=True, rule=True)
        rows.append({"clip": n, "seconds": len(s) / c.fps, "generic": gen, "adapted": ada})
        log(f"{n:45s} {len(s) / c.fps:5.1f} s  generic opening r {gen['opening']:.2f} width "
            f"{gen['width']:.2f} | as rendered (adapted when the first half has >= {ADAPT_MIN_SECONDS:g} s "
            f"of speech) {ada['opening']:.2f} / {ada['width']:.2f}")
    return rows


def block_study(names, *, log=print) -> dict[int, float]:
    """Which Whisper encoder block to read: for 1..6 blocks, the training clips' features
    from the encoder cut there, and the leave-one-clip-out opening r of the read-out fitted
    on them (the same fit as the shipped model, held-out clips untouched)."""
    import dataclasses

    from .speech import WhisperEncoder

    clips = [corpus.load_clip(n) for n in names]
    scores = {}
    for blocks in range(1, 7):
        enc = WhisperEncoder(blocks=blocks)
        cut = [dataclasses.replace(c, whisper=enc.encode(c.samples)) for c in clips]
        scores[blocks] = fit(names, clips=cut, log=lambda *a: None).info["loo_opening_r"]
        log(f"{blocks} encoder blocks: leave-one-clip-out opening r {scores[blocks]:.3f}")
    return scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lipsync.train")
    ap.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--blocks", action="store_true",
                    help="compare the Whisper encoder's blocks as features; writes nothing")
    a = ap.parse_args(argv)
    if a.blocks:
        block_study(corpus.training_clips())
        return 0
    t = time.perf_counter()
    model = fit(corpus.training_clips())
    print("held-out clips (never fitted or tuned on):")
    validate(model, corpus.HOLDOUT)
    model.save(a.out)
    print(f"wrote {a.out} in {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
