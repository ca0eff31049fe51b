"""Train the audio -> mouth motion model.

    python -m lipsync.train                       # writes lipsync/weights/motion.pt
    python -m lipsync.train --holdout face_square_2.mp4 --out var/motion-loo2.pt

Data: synthetic espeak-ng speech in 7 languages with phoneme-derived viseme targets
(lipsync.visemes) plus the real clips in ../shared/media with FaceMesh targets. Everything
is seeded; on the same library versions the weights come out the same.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time

import numpy as np

from . import dataset

NET = {"n_in": 81, "channels": 96, "dilations": [1, 2, 4, 8, 4], "dropout": 0.1}


def synthetic_data(n_per_lang, seed, langs=None):
    """Cached synthetic corpus (generation is deterministic for the arguments)."""
    langs = langs or list(dataset.SENTENCES)
    key = hashlib.sha1(repr((n_per_lang, seed, langs, "v3")).encode()).hexdigest()[:12]
    path = dataset.CACHE / f"synth-{key}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    data = dataset.synthetic_corpus(n_per_lang, seed=seed, langs=langs)
    dataset.CACHE.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def _batch(examples, probs, rng, size, length):
    x = np.zeros((size, examples[0][0].shape[1], length), np.float32)
    y = np.zeros((size, 2, length), np.float32)
    w = np.zeros((size, length), np.float32)
    for b in range(size):
        feats, targ, weight = examples[rng.choice(len(examples), p=probs)]
        n = feats.shape[0]
        start = rng.integers(0, max(1, n - length + 1))
        m = min(length, n - start)
        x[b, :, :m] = feats[start:start + m].T
        y[b, :, :m] = targ[start:start + m].T
        w[b, :m] = weight[start:start + m]
    return x, y, w


def train(*, holdout=(), n_per_lang=120, steps=1200, seed=0, langs=None, real=True,
          real_share=0.3, threads=1, log=print):
    """Returns (net, info). holdout: real clip names kept out of training."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    synth = synthetic_data(n_per_lang, seed, langs)
    reals = [dataset.real_clip(c) for c in dataset.REAL_CLIPS if real and c not in holdout]
    log(f"data: {len(synth)} synthetic utterances, {len(reals)} real clips "
        f"({time.time() - t0:.0f} s)")
    examples = synth + reals
    lens = np.array([e[0].shape[0] for e in examples], np.float64)
    probs = lens.copy()
    probs[: len(synth)] *= (1 - real_share if reals else 1.0) / lens[: len(synth)].sum()
    if reals:
        probs[len(synth):] *= real_share / lens[len(synth):].sum()
    probs /= probs.sum()

    from .motion import build_net

    net = build_net(**NET)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps,
                                                pct_start=0.1)
    net.train()
    for step in range(steps):
        x, y, w = (torch.from_numpy(a) for a in _batch(examples, probs, rng, 16, 256))
        pred = net(x)
        mse = ((pred - y) ** 2 * w[:, None]).sum((0, 2)) / w.sum().clamp(min=1)
        # targets are ~0.1 in size: scale the MSE to order 1 so it balances the r term
        loss = 100 * (mse[0] + 0.5 * mse[1]) + 0.3 * (1 - _corr(pred[:, 0], y[:, 0], w)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step:5d} loss {loss.item():.4f} mse open {mse[0].item():.4f} "
                f"width {mse[1].item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    info = {"holdout": list(holdout), "n_per_lang": n_per_lang, "steps": steps, "seed": seed,
            "langs": langs or list(dataset.SENTENCES), "real": real,
            "train_seconds": round(time.time() - t0, 1)}
    return net, info


def _corr(a, b, w):
    """Weighted Pearson r per row of (B, T) tensors."""
    s = w.sum(1, keepdim=True).clamp(min=1)
    am = a - (a * w).sum(1, keepdim=True) / s
    bm = b - (b * w).sum(1, keepdim=True) / s
    cov = (am * bm * w).sum(1)
    return cov / ((am ** 2 * w).sum(1).sqrt() * (bm ** 2 * w).sum(1).sqrt() + 1e-6)


def save(net, info, path):
    import os

    import torch

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"config": {"net": NET, "features": "logmel80-norm+energy", "rate": 100.0},
                "info": info, "state_dict": net.state_dict()}, path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lipsync.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(dataset.REPO / "lipsync" / "weights" / "motion.pt"))
    p.add_argument("--holdout", action="append", default=[],
                   help="real clip name to keep out of training (repeatable)")
    p.add_argument("--no-real", action="store_true", help="synthetic speech only")
    p.add_argument("--langs", help="comma-separated espeak languages (default: all)")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--per-lang", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    net, info = train(holdout=a.holdout, n_per_lang=a.per_lang, steps=a.steps, seed=a.seed,
                      langs=a.langs.split(",") if a.langs else None, real=not a.no_real,
                      threads=a.threads)
    save(net, info, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
