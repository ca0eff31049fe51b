"""A contact sheet of mouth crops for docs/QUALITY.md: per clip, three rows of aligned mouth
crops at the same instants: the template (first half), the engine's output driven by the
second half's audio, and the real second half (ground truth).

    .venv/bin/python bench/contact_sheet.py docs/quality/contact_sheet.jpg

Only the Apache-2.0 clips of ../shared/media are used (the training footage is not to be
shipped in any form); all three are held out of the mouth model's training.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = REPO.parent / "shared" / "media"
CLIPS = ("face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4")
N, SIZE = 8, 112


def crops(path, at):
    from lipsync import landmarks as L
    from lipsync.media import read_frames
    from lipsync.sync import aligned_mouth

    frames = list(read_frames(path))
    out = []
    with L.FaceTracker() as tracker:
        for i, f in enumerate(frames):
            pts = tracker(f)   # tracking mode: feed every frame, keep the chosen ones
            if i in at:
                out.append(aligned_mouth(f, pts, SIZE) if pts is not None else np.zeros((SIZE, SIZE, 3), np.uint8))
    return out


def main(out_path: str) -> int:
    import cv2

    from lipsync.audio import analyse_audio
    from lipsync.engines import load_engine
    from lipsync.evaluate import cut_halves
    from lipsync.prepare import prepare_template

    engine = load_engine("default", device="cpu")
    blocks = []
    for clip in CLIPS:
        with tempfile.TemporaryDirectory() as d:
            first, second, fps = cut_halves(MEDIA / clip, d)
            tpl = prepare_template(first, cache_dir=d)
            out = Path(d) / "out.mp4"
            engine.render(tpl, analyse_audio(second), out, fps=fps)
            n = tpl.n_frames
            at = set(np.linspace(3, n - 4, N).astype(int).tolist())
            rows = [crops(p, at) for p in (first, out, second)]
        block = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
        label = np.full((18, block.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"{clip}: template / output / ground truth", (4, 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        blocks += [label, block]
    sheet = np.concatenate(blocks, 0)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out_path} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/quality/contact_sheet.jpg"))
