"""Phoneme -> viseme targets with coarticulation, for synthetic training targets.

Phonemes are IPA strings as espeak-ng reports them (stress marks, length marks and
aspiration allowed), or CMU phones from pocketsphinx. A viseme here is a mouth shape:
(opening, width) in MouthTrack units: opening = inner-lip gap / inter-ocular distance,
width = relative change of mouth width (-0.15 rounded, +0.1 spread).
"""

from __future__ import annotations

import numpy as np

# name: (opening, width, dominance for opening, dominance for width)
# Dominance decides who wins during coarticulation: lips must close for /p b m/ whatever
# the neighbours do, while /k h/ leave the mouth to the surrounding vowels.
VISEMES = {
    "rest":       (0.00, 0.00, 1.0, 0.6),
    "bilabial":   (0.00, 0.00, 10.0, 0.3),
    "labiodental": (0.03, -0.02, 3.0, 0.3),
    "open":       (0.32, 0.02, 1.0, 0.7),
    "open_front": (0.28, 0.06, 1.0, 0.7),
    "open_round": (0.26, -0.10, 1.0, 1.0),
    "mid_front":  (0.18, 0.08, 1.0, 1.0),
    "mid":        (0.15, 0.00, 0.8, 0.5),
    "mid_round":  (0.17, -0.13, 1.0, 1.5),
    "close_front": (0.08, 0.11, 1.0, 1.5),
    "close_round": (0.07, -0.17, 1.0, 2.0),
    "close_front_round": (0.06, -0.15, 1.0, 2.0),
    "close_back": (0.07, 0.05, 1.0, 1.0),
    "w":          (0.04, -0.18, 1.5, 2.0),
    "j":          (0.06, 0.08, 0.8, 1.0),
    "postalveolar": (0.06, -0.08, 1.2, 1.0),
    "alveolar":   (0.07, 0.02, 0.6, 0.2),
    "dental":     (0.07, 0.02, 0.8, 0.2),
    "r":          (0.09, -0.05, 0.6, 0.5),
    "velar":      (0.10, 0.00, 0.3, 0.1),
    "glottal":    (0.12, 0.00, 0.1, 0.1),
}

_VOWELS = {
    "a": "open", "ɑ": "open", "ɐ": "open", "ä": "open", "ʌ": "open",
    "æ": "open_front", "ɒ": "open_round", "ɔ": "open_round",
    "e": "mid_front", "ɛ": "mid_front", "ə": "mid", "ɜ": "mid", "ɘ": "mid", "ɚ": "mid",
    "ɤ": "mid", "ɵ": "mid_round", "o": "mid_round", "ø": "mid_round", "œ": "mid_round",
    "i": "close_front", "ɪ": "close_front", "ɨ": "close_front",
    "u": "close_round", "ʊ": "close_round", "ʉ": "close_round",
    "y": "close_front_round", "ʏ": "close_front_round", "ɯ": "close_back",
}
_CONSONANTS = {
    "p": "bilabial", "b": "bilabial", "m": "bilabial", "ɓ": "bilabial", "ɸ": "bilabial",
    "β": "bilabial",
    "f": "labiodental", "v": "labiodental", "ɱ": "labiodental", "ʋ": "labiodental",
    "w": "w", "ʍ": "w", "ɥ": "w", "j": "j",
    "ʃ": "postalveolar", "ʒ": "postalveolar", "ɕ": "postalveolar", "ʑ": "postalveolar",
    "ʂ": "postalveolar", "ʐ": "postalveolar", "ç": "postalveolar",
    "t": "alveolar", "d": "alveolar", "n": "alveolar", "s": "alveolar", "z": "alveolar",
    "l": "alveolar", "ɬ": "alveolar", "ɾ": "alveolar", "ɲ": "alveolar", "ʎ": "alveolar",
    "ɭ": "alveolar", "ɳ": "alveolar", "ʈ": "alveolar", "ɖ": "alveolar", "c": "alveolar",
    "θ": "dental", "ð": "dental",
    "ɹ": "r", "r": "r", "ʁ": "r", "ɻ": "r", "ʀ": "r",
    "k": "velar", "g": "velar", "ɡ": "velar", "ŋ": "velar", "x": "velar", "ɣ": "velar",
    "q": "velar", "χ": "velar",
    "h": "glottal", "ʔ": "glottal", "ɦ": "glottal",
}
# CMU phones (pocketsphinx) -> the IPA symbol whose class they share
_CMU = {"AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ",
        "ER": "ɚ", "EY": "eɪ", "IH": "ɪ", "IY": "i", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ",
        "UW": "u", "B": "b", "CH": "ʃ", "D": "d", "DH": "ð", "F": "f", "G": "g", "HH": "h",
        "JH": "ʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ",
        "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z",
        "ZH": "ʒ", "SIL": ""}


def classes(phoneme: str) -> list[str]:
    """Viseme classes of one phoneme label, in order ("aɪ" -> ["open", "close_front"]).

    Affricates and aspiration collapse to their most visible part; unknown symbols are
    ignored; an empty or pause label is "rest".
    """
    phoneme = _CMU.get(phoneme, phoneme)
    out = []
    consonant = None
    for ch in phoneme:
        if ch in _VOWELS:
            out.append(_VOWELS[ch])
        elif ch in _CONSONANTS:
            cls = _CONSONANTS[ch]
            # "tʃ", "ts.h": keep the most lip-relevant part (highest opening dominance)
            if consonant is None or VISEMES[cls][2] > VISEMES[consonant][2]:
                consonant = cls
    if consonant and not out:
        return [consonant]
    if consonant:       # syllabic clusters are rare in espeak output; put the consonant first
        return [consonant] + out
    return out or ["rest"]


def track_from_phonemes(phonemes, n_steps: int, rate: float = 100.0,
                        tau: float = 0.03, smooth: float = 0.015) -> np.ndarray:
    """[(label, start_s, end_s)] -> (n_steps, 2) float32 [opening, width] at ``rate`` Hz.

    Dominance-blended coarticulation (Cohen & Massaro style): each segment pulls the mouth
    toward its target with a weight that decays as exp(-distance / tau) outside the segment;
    the result is Gaussian-smoothed with sigma ``smooth`` seconds. Time outside every
    segment is rest (closed, neutral).
    """
    t = np.arange(n_steps) / rate
    segs = []
    for label, start, end in phonemes:
        cls = classes(label)
        step = (end - start) / len(cls)
        for k, c in enumerate(cls):
            segs.append((c, start + k * step, start + (k + 1) * step))
    num = np.zeros((n_steps, 2))
    den = np.zeros((n_steps, 2))
    # rest everywhere with low weight, so gaps between segments relax toward closed
    den += 0.02
    if segs:
        first, last = segs[0][1], segs[-1][2]
        outside = np.maximum(first - t, t - last).clip(0)
        w = 1.0 - np.exp(-outside / tau)
        den += w[:, None] * np.array([VISEMES["rest"][2], VISEMES["rest"][3]])
    else:
        den += 1.0
    for cls, start, end in segs:
        op, wd, dop, dwd = VISEMES[cls]
        dist = np.maximum(start - t, t - end).clip(0)
        # long segments (pauses, held vowels) stay in shape; short ones blend more
        d = np.exp(-dist / tau)
        num[:, 0] += dop * d * op
        num[:, 1] += dwd * d * wd
        den[:, 0] += dop * d
        den[:, 1] += dwd * d
    out = num / den
    if smooth > 0:
        from scipy.ndimage import gaussian_filter1d

        out = gaussian_filter1d(out, smooth * rate, axis=0, mode="nearest")
    return out.astype(np.float32)
