"""Quality measures for rendered videos.

1. Self-reenactment against ground truth (`self_reenactment`): render the first half of a real
   talking clip driven by its second half's audio and correlate the mouth shape per frame
   with the real second half.
2. Audio-visual sync on any video (`sync_score`): correlation between mouth-crop motion and
   speech-band energy, best lag within +-5 frames, z-scored against shifted audio.
3. Fidelity (`fidelity`): PSNR outside the lower face vs the template; face-tracked fraction.
4. Jitter (`jitter`): how much a mouth-opening series shakes from frame to frame.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import landmarks as L
from .constants import SAMPLE_RATE
from .media import decode_audio, read_frames
from .probing import probe
from .sync import aligned_mouth, pearson, speech_energy, sync_from_series  # noqa: F401 - re-exported


def mouth_shape_series(video_path, *, fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth shape of a video, from FaceMesh.

    Returns (opening, width), each (T,) float32: inner-lip gap / IOD and mouth width / IOD
    (absolute, not relative to the median).  NaN where no face was found.
    """
    lm, has = L.track(read_frames(video_path, fps=fps))
    lm = L.smooth(lm, has, sigma=0.0)
    o, w, _ = L.mouth_measures(lm)
    o = np.where(has, o, np.nan).astype(np.float32)
    w = np.where(has, w, np.nan).astype(np.float32)
    return o, w


def mouth_motion(video_path, *, size: int = 48) -> tuple[np.ndarray, np.ndarray, float]:
    """Frame-to-frame change of a mouth crop aligned on the landmarks.

    Returns motion (T,) float32 (mean absolute grey-level difference between consecutive
    mouth crops, 0 for the first frame; nan without a face), opening (T,) and fps.
    """
    import cv2

    info = probe(video_path)
    motion, opening = [], []
    prev = None
    with L.FaceTracker() as tracker:
        for rgb in read_frames(video_path):
            pts = tracker(rgb)
            if pts is None:
                motion.append(np.nan)
                opening.append(np.nan)
                prev = None
                continue
            o, _, _ = L.mouth_measures(pts)
            opening.append(float(o))
            crop = aligned_mouth(rgb, pts, size)
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
            motion.append(float(np.abs(crop - prev).mean()) if prev is not None else 0.0)
            prev = crop
    return np.array(motion, np.float32), np.array(opening, np.float32), info.fps


def sync_score(video_path, audio=None, *, max_lag: int = 5) -> dict:
    """Audio-visual sync of a video against its own audio track, or `audio` (path or (N,)
    16 kHz samples).

    Returns dict(r=correlation at the best lag, lag=best lag in frames (positive: video
    late), z=(r - mean) / std of r over circular shifts of the audio).
    """
    motion, opening, fps = mouth_motion(video_path)
    if audio is None:
        audio = decode_audio(video_path)
    elif not isinstance(audio, np.ndarray):
        audio = decode_audio(audio)
    return sync_from_series(motion, audio, fps, max_lag=max_lag)


# -- fidelity -------------------------------------------------------------------------------

def fidelity(output_path, template, *, max_frames: int | None = None) -> dict:
    """PSNR (dB) outside the lower face between an output and its template's frames (at the
    same index, no looping), and the fraction of template frames with a tracked face.

    template: a PreparedTemplate.  Frames beyond the template's length are skipped.
    """
    import cv2

    n = min(template.n_frames, max_frames or template.n_frames)
    se = 0.0
    count = 0
    out_it = read_frames(output_path, fps=template.fps, max_frames=n)
    tpl_it = read_frames(template.video_path, fps=template.fps, max_frames=n)
    for i, (o, t) in enumerate(zip(out_it, tpl_it)):
        h, w = o.shape[:2]
        t = t[:h, :w]
        keep = np.ones((h, w), bool)
        if template.has_face[i]:
            mask = L.lower_face_mask(template.landmarks[i], (h, w), margin=0.25)
            keep &= ~cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        d = o[keep].astype(np.float32) - t[keep].astype(np.float32)
        se += float((d ** 2).sum())
        count += d.size
    mse = se / max(count, 1)
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return {"psnr_outside": psnr, "face_fraction": template.face_fraction}


# -- self-reenactment ------------------------------------------------------------------------

def cut_halves(clip_path, workdir) -> tuple[Path, Path, float]:
    """Write the first and second half of a clip (video + its own audio) as two mp4s."""
    from .media import VideoWriter

    info = probe(clip_path)
    fps = info.fps
    audio = decode_audio(clip_path)
    frames = list(read_frames(clip_path))
    half = len(frames) // 2
    d = Path(workdir)
    first, second = d / "first.mp4", d / "second.mp4"
    a0 = int(round(half / fps * SAMPLE_RATE))
    a1 = int(round(2 * half / fps * SAMPLE_RATE))
    for path, lo, hi, alo, ahi in ((first, 0, half, 0, a0), (second, half, 2 * half, a0, a1)):
        with VideoWriter(path, info.width, info.height, fps, audio=audio[alo:ahi],
                         preset="ultrafast", crf=16) as w:
            for rgb in frames[lo:hi]:
                w.write(rgb)
    return first, second, fps


def jitter(opening: np.ndarray) -> float:
    """RMS of the second difference of a per-frame opening series (T,) in IOD units per
    frame^2: 0 for a mouth that moves at constant speed, large for one that shakes.  Frames
    without a face (nan) are skipped with their neighbours."""
    o = np.asarray(opening, np.float64)
    d2 = o[2:] - 2 * o[1:-1] + o[:-2]
    d2 = d2[np.isfinite(d2)]
    return float(np.sqrt(np.mean(d2 ** 2))) if len(d2) else float("nan")


def compare_mouths(output, reference, *, max_lag: int = 3) -> dict:
    """Per-frame mouth agreement of a video with a reference video of the same length:
    opening, width and motion Pearson r at lag 0, the opening's best lag in +-max_lag frames
    (positive: output late) with its r, the opening's nRMSE (RMSE / reference std), and the
    output's opening jitter against the reference's (``jitter_ratio``: 1.0 = shakes as much
    as the real mouth)."""
    o_out, w_out = mouth_shape_series(output)
    o_ref, w_ref = mouth_shape_series(reference)
    m_out = mouth_motion(output)[0]
    m_ref = mouth_motion(reference)[0]
    n = min(len(o_out), len(o_ref))
    o_out, o_ref, w_out, w_ref = o_out[:n], o_ref[:n], w_out[:n], w_ref[:n]

    def at(lag):
        if lag >= 0:
            return pearson(o_out[lag:], o_ref[: n - lag])
        return pearson(o_out[: n + lag], o_ref[-lag:])

    lags = {k: at(k) for k in range(-max_lag, max_lag + 1)}
    finite = {k: v for k, v in lags.items() if np.isfinite(v)}
    best = max(finite, key=finite.get) if finite else 0
    ok = np.isfinite(o_out) & np.isfinite(o_ref)
    nrmse = float(np.sqrt(np.mean((o_out[ok] - o_ref[ok]) ** 2)) / max(float(np.std(o_ref[ok])), 1e-6))
    j_out = jitter(o_out)
    return {"opening": pearson(o_out, o_ref), "width": pearson(w_out, w_ref),
            "motion": pearson(m_out[1:n], m_ref[1:n]), "best_lag": int(best),
            "opening_best": float(finite.get(best, float("nan"))), "nrmse": nrmse, "frames": n,
            "jitter": j_out, "jitter_ratio": j_out / max(jitter(o_ref), 1e-9)}


def self_reenactment(clip_path, engine="default", *, device=None, workdir=None) -> dict:
    """Cut a real talking clip in half; render the first half driven by the second half's
    audio; compare the output's mouth per frame with the real second half
    (compare_mouths), and its fidelity outside the lower face with the template."""
    from .audio import analyse_audio
    from .engines import load_engine
    from .prepare import prepare_template

    with tempfile.TemporaryDirectory(dir=workdir) as d:
        first, second, fps = cut_halves(clip_path, d)
        eng = engine if hasattr(engine, "render") else load_engine(engine, device=device)
        tpl = prepare_template(first, cache_dir=d)
        out = Path(d) / "out.mp4"
        eng.render(tpl, analyse_audio(second), out, fps=fps)
        row = compare_mouths(out, second)
        row["psnr_outside"] = fidelity(out, tpl)["psnr_outside"]
        row["adapted"] = tpl.speaker_weights is not None
    row["r_opening"], row["r_width"] = row["opening"], row["width"]
    return row
