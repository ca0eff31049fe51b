"""English phone timings from pocketsphinx's phone-loop decoder (an optional output of audio
analysis).  Nothing is downloaded: the pocketsphinx wheel ships its English acoustic model.
"""

from __future__ import annotations

import os

import numpy as np


def recognise_phonemes(samples: np.ndarray) -> list[tuple[str, float, float]]:
    """English phone recognition with pocketsphinx's phone-loop decoder.

    (N,) float32 16 kHz -> [(CMU phone e.g. "AA", "M", "SIL", start_s, end_s)].
    Returns [] when pocketsphinx is not installed. Accuracy is modest (phone error rate of
    the CMU phone loop is high); treat labels as hints, timings of silences are reliable.
    """
    try:
        from pocketsphinx import Config, Decoder, get_model_path
    except ImportError:
        return []
    model = get_model_path()
    config = Config(hmm=os.path.join(model, "en-us", "en-us"),
                    allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"),
                    lm=None, beam=1e-20, pbeam=1e-20, lw=2.0, loglevel="FATAL")
    decoder = Decoder(config)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    frate = 100.0
    out = []
    for seg in decoder.seg():
        word = seg.word
        if word in ("<s>", "</s>", "<sil>", "[NOISE]", "+SPN+", "+NSN+"):
            word = "SIL"
        out.append((word, seg.start_frame / frate, (seg.end_frame + 1) / frate))
    return out
