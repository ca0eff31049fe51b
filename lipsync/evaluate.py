"""Quality measures for rendered videos.

1. Self-reenactment against ground truth (`self_reenactment`): render the first half of a real
   talking clip driven by its second half's audio and correlate the mouth shape per frame
   with the real second half.
2. Audio-visual sync on any video (`sync_score`): correlation between mouth-crop motion and
   speech-band energy, best lag within +-5 frames, z-scored against shifted audio.
3. Fidelity (`fidelity`): PSNR outside the lower face vs the template; face-tracked fraction.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import landmarks as L
from .media import SAMPLE_RATE, decode_audio, probe, read_frames


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


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the positions where both are finite; nan when undefined."""
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], np.float64), np.asarray(b[:n], np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() < 1e-9 or b[ok].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# -- audio-visual sync ----------------------------------------------------------------------

def speech_energy(audio: np.ndarray, fps: float, n_frames: int,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Log energy in the speech band (300-3000 Hz) per video frame: (n_frames,) float32."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300, 3000], btype="band", fs=sample_rate, output="sos")
    x = sosfiltfilt(sos, audio.astype(np.float64)) if len(audio) > 30 else audio
    e = np.zeros(n_frames, np.float32)
    for j in range(n_frames):
        a = int(j / fps * sample_rate)
        b = int((j + 1) / fps * sample_rate)
        seg = x[a:b]
        e[j] = np.log(np.mean(seg ** 2) + 1e-8) if len(seg) else np.log(1e-8)
    return e


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
            crop = _aligned_mouth(rgb, pts, size)
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
            motion.append(float(np.abs(crop - prev).mean()) if prev is not None else 0.0)
            prev = crop
    return np.array(motion, np.float32), np.array(opening, np.float32), info.fps


def _aligned_mouth(rgb, pts, size):
    """Mouth crop (size, size, 3) in the face's frame: centred between the mouth corners,
    1.6 mouth widths wide, rotated upright."""
    import cv2

    u, v, iod = L.face_axes(pts)
    c = (pts[61] + pts[291]) / 2
    half = 0.8 * iod
    src = np.float32([c - u * half - v * half, c + u * half - v * half, c - u * half + v * half])
    dst = np.float32([[0, 0], [size, 0], [0, size]])
    M = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(rgb, M, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


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


def sync_from_series(motion: np.ndarray, audio: np.ndarray, fps: float, *,
                     max_lag: int = 5) -> dict:
    """sync_score on a precomputed mouth-motion series (T,)."""
    T = len(motion)
    e = speech_energy(audio, fps, T)
    # energy change drives mouth change: compare |d energy| with mouth motion
    de = np.abs(np.diff(e, prepend=e[:1]))
    m = motion.astype(np.float64)

    def corr_at(sig, lag):
        if lag >= 0:
            a, b = m[lag:], sig[: T - lag]
        else:
            a, b = m[: T + lag], sig[-lag:]
        return pearson(a, b)

    rs = {lag: corr_at(de, lag) for lag in range(-max_lag, max_lag + 1)}
    rs = {k: v for k, v in rs.items() if np.isfinite(v)}
    if not rs:
        return {"r": float("nan"), "lag": 0, "z": float("nan")}
    lag = max(rs, key=rs.get)
    r = rs[lag]
    null = []
    for s in range(max(2 * max_lag + 1, T // 20), T - 2 * max_lag - 1, max(1, T // 60)):
        sh = np.roll(de, s)
        null.append(max((corr_at(sh, k) for k in range(-max_lag, max_lag + 1)),
                        key=lambda x: x if np.isfinite(x) else -9))
    null = np.array([x for x in null if np.isfinite(x)])
    z = float((r - null.mean()) / (null.std() + 1e-6)) if len(null) > 3 else float("nan")
    return {"r": float(r), "lag": int(lag), "z": z}


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

def self_reenactment(clip_path, engine="default", *, device=None, workdir=None) -> dict:
    """Cut a real talking clip in half; render the first half driven by the second half's
    audio; correlate the output's mouth shape with the real second half's, per frame, lag 0.

    Returns dict(r_opening, r_width, frames, output) (r = Pearson).
    """
    from .engines import load_engine
    from .media import VideoWriter
    from .prepare import prepare_template

    info = probe(clip_path)
    fps = info.fps
    audio = decode_audio(clip_path)
    n = sum(1 for _ in read_frames(clip_path))
    half = n // 2
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        d = Path(d)
        first, second = d / "first.mp4", d / "second.mp4"
        a0 = int(half / fps * SAMPLE_RATE)
        a1 = int(2 * half / fps * SAMPLE_RATE)
        for path, lo, hi, alo, ahi in ((first, 0, half, 0, a0), (second, half, 2 * half, a0, a1)):
            with VideoWriter(path, info.width, info.height, fps, audio=audio[alo:ahi],
                             preset="ultrafast", crf=16) as w:
                for i, rgb in enumerate(read_frames(clip_path)):
                    if i >= hi:
                        break
                    if i >= lo:
                        w.write(rgb)
        eng = engine if hasattr(engine, "render") else load_engine(engine, device=device)
        from .audio import analyse_audio

        tpl = prepare_template(first, cache_dir=d)
        out = d / "out.mp4"
        eng.render(tpl, analyse_audio(second), out, fps=fps)
        o_out, w_out = mouth_shape_series(out)
        o_ref, w_ref = mouth_shape_series(second)
    return {"r_opening": pearson(o_out, o_ref), "r_width": pearson(w_out, w_ref),
            "frames": int(min(len(o_out), len(o_ref)))}
