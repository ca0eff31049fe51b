"""Training data for the motion model: real talking clips and synthetic espeak-ng speech.

Each example is (features (T, F) float32 at 100 Hz, targets (T, 2) float32 [opening, width],
weight (T,) float32 0..1). Opening = inner-lip gap / inter-ocular distance; width = mouth
width relative to the clip's median - 1. Both follow lipsync.motion.MouthTrack.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import visemes
from .audio import FEATURE_RATE, compute_features

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
CACHE = REPO / "var" / "train_cache"

# Real talking clips with their own speech (English-ish), see ../shared/media/SOURCES.md.
REAL_CLIPS = ["face_square_1.mp4", "face_square_2.mp4", "face_square_3.mp4",
              "portrait_hevc_1080x1920.mp4"]

def mouth_shape_series(video_path):
    """FaceMesh on every frame -> (times (T,) s, opening (T,), width (T,), valid (T,) bool).

    The measurement is lipsync.evaluate.mouth_shape_series (inner-lip gap / IOD, mouth
    width / IOD), so training targets and the quality evaluation measure the same thing;
    width is turned into the relative change vs the clip's median, as in MouthTrack.
    """
    from .evaluate import mouth_shape_series as measure
    from .media import probe

    fps = probe(video_path).fps
    opening, width = measure(video_path)
    opening = np.asarray(opening, np.float64)
    width = np.asarray(width, np.float64)
    valid = np.isfinite(opening) & np.isfinite(width)
    width = width / np.nanmedian(width) - 1.0
    return np.arange(len(opening)) / fps, opening, width, valid


def real_clip(name, *, t0=0.0, t1=None, series=False):
    """Features (T, 81), FaceMesh targets (T, 2) and weight (T,) of a real clip at 100 Hz,
    optionally only its [t0, t1) seconds. series=True returns the cached per-video-frame
    (times, opening, width, valid) instead."""
    from .audio import _decode

    path = MEDIA / name
    key = hashlib.sha1(f"{name}:{path.stat().st_size}:v2".encode()).hexdigest()[:12]
    cache = CACHE / f"real-{key}.npz"
    if cache.exists():
        z = np.load(cache)
        times, opening, width, valid = z["times"], z["opening"], z["width"], z["valid"]
    else:
        times, opening, width, valid = mouth_shape_series(path)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, times=times, opening=opening, width=width, valid=valid)
    if series:
        return times, opening, width, valid
    samples = _decode(path)
    feats = input_features(compute_features(samples))
    grid = np.arange(feats.shape[0]) / FEATURE_RATE
    ok = valid & np.isfinite(opening)
    targets = np.stack([np.interp(grid, times[ok], opening[ok]),
                        np.interp(grid, times[ok], width[ok])], 1).astype(np.float32)
    weight = ((grid >= times[ok][0]) & (grid <= times[ok][-1])).astype(np.float32)
    lo = int(round(t0 * FEATURE_RATE))
    hi = feats.shape[0] if t1 is None else int(round(t1 * FEATURE_RATE))
    return feats[lo:hi], targets[lo:hi], weight[lo:hi]


def input_features(features: dict) -> np.ndarray:
    """Model input (T, 81): logmel normalised per utterance + a relative energy channel.

    Per-utterance mean/std normalisation removes the channel and loudness, so the model has
    to look at spectral shape (formants) rather than level.
    """
    logmel = features["logmel"]
    energy = features["energy"]
    mu = logmel.mean(0, keepdims=True)
    sd = logmel.std(0, keepdims=True) + 1e-3
    norm = (logmel - mu) / sd
    # energy relative to the utterance's loud frames, clipped to a 60 dB range, 0..1
    rel = np.clip((energy - np.percentile(energy, 95) + 60.0) / 60.0, 0.0, 1.0)
    return np.concatenate([norm, rel[:, None]], 1).astype(np.float32)


# ---------------------------------------------------------------- synthetic speech

SENTENCES = {
    "en": ["The quick brown fox jumps over the lazy dog.", "Please call Bob before my meeting.",
           "We were away a year ago.", "I see the bee in the tree.", "Who knew you would move?",
           "My mom made a map of Boston.", "Father parked the car far away.",
           "She sells sea shells by the sea shore.", "Peter Piper picked a peck of peppers.",
           "How are you doing today?", "Oh no, not the blue boots again.",
           "Five fine violins were found.", "Many people meet at the market every Monday.",
           "What time is it now?", "Open the window, it is warm.",
           "Bring me a bowl of soup, please.", "Eat your peas and beans.",
           "Thank you very much for coming.", "A big black bug bit a big black bear."],
    "de": ["Guten Morgen, wie geht es dir?", "Ich habe heute keine Zeit.",
           "Das Wetter ist sehr schön.", "Mein Bruder wohnt in München.",
           "Wir fahren morgen mit dem Bus.", "Bitte mach das Fenster auf.",
           "Die Kinder spielen im Garten.", "Ein Apfel am Tag hält den Doktor fern.",
           "Über den Wolken muss die Freiheit grenzenlos sein."],
    "es": ["Hola, ¿cómo estás hoy?", "Me gusta mucho la música.", "Mi mamá prepara la comida.",
           "Vamos a la playa mañana.", "El perro bebe agua fría.",
           "Buenos días a todos ustedes.", "Pablo puso el vaso en la mesa.",
           "Quiero un poco de pan, por favor."],
    "fr": ["Bonjour tout le monde.", "Je voudrais un café, s'il vous plaît.",
           "Il fait beau aujourd'hui.", "Ma maman mange une pomme.", "Nous allons au musée.",
           "Où est la boulangerie?", "Pierre boit du vin rouge.", "Le petit bateau part au port."],
    "cmn": ["我们今天去北京。", "你好，很高兴认识你。", "妈妈骂马吗？", "请问，火车站在哪里？",
            "我不知道他叫什么名字。", "今天天气很好，我们出去玩吧。", "爸爸喜欢喝茶。",
            "这本书非常有意思。", "他每天早上跑步。", "我们明天八点见面。", "飞机马上就要起飞了。",
            "新闻报道说，明天会下雨。"],
    "it": ["Buongiorno, come stai?", "Mamma mia, che bella pizza!", "Andiamo al mare domani."],
    "pt": ["Bom dia, tudo bem?", "Eu moro em uma casa pequena.", "O menino bebe muito leite."],
}

# Syllable inventories for pseudo-words: cover every viseme class in each language.
_ONSETS = {"en": "b p m f v w l r s t d k g n h sh ch th y".split(),
           "de": "b p m f w l r s t d k g n h sch z".split(),
           "es": "b p m f l r s t d k g n ch y".split(),
           "fr": "b p m f v l r s t d k g n ch j".split(),
           "it": "b p m f v l r s t d g n".split(),
           "pt": "b p m f v l r s t d g n".split(),
           "cmn": []}
_VOWELS = {"en": "a e i o u ee oo ay oh ah".split(), "de": "a e i o u ü ö ei au".split(),
           "es": "a e i o u".split(), "fr": "a e i o ou u é".split(), "it": "a e i o u".split(),
           "pt": "a e i o u".split(), "cmn": []}
# Pinyin syllables with tone digits: espeak's cmn voice reads pinyin.
_PINYIN = ("ba pa ma fa bo po mo fo mi bi pi mu bu pu da ta na la ge ke he ji qi xi zhi chi shi "
           "ri zi ci si a o e yi wu yu ai ei ao ou an en ang eng ong er wo wa ye yue").split()

VOICES = {"en": ["en-us", "en", "en-gb-x-rp"], "de": ["de"], "es": ["es"], "fr": ["fr"],
          "it": ["it"], "pt": ["pt"], "cmn": ["cmn"]}
_VARIANTS = ["", "+m1", "+m3", "+f1", "+f2", "+f4", "+m7"]


def _pseudo_text(lang, rng):
    words = []
    for _ in range(rng.integers(3, 8)):
        n = rng.integers(1, 4)
        if lang == "cmn":
            words.append(" ".join(f"{rng.choice(_PINYIN)}{rng.integers(1, 5)}" for _ in range(n)))
        else:
            words.append("".join(rng.choice(_ONSETS[lang]) + rng.choice(_VOWELS[lang])
                                 for _ in range(n)))
    return " ".join(words) + "."


def synthetic_example(lang, rng, *, augment=True, sentences=None, pseudo=None,
                      return_samples=False):
    """One espeak utterance in ``lang`` -> (features (T, 81), targets (T, 2), weight (T,)).

    sentences: text pool (default SENTENCES[lang]); pseudo: probability of pseudo-words
    instead of a sentence (default 0.5 for Mandarin, 0.35 otherwise).
    """
    from .phonemes import synthesize

    pool = SENTENCES[lang] if sentences is None else sentences
    if pseudo is None:
        pseudo = 0.5 if lang == "cmn" else 0.35
    if rng.random() < pseudo:
        text = _pseudo_text(lang, rng)
    else:
        k = rng.integers(1, 3)
        text = " ".join(rng.choice(pool, size=min(k, len(pool)), replace=False))
    voice = str(rng.choice(VOICES[lang])) + str(rng.choice(_VARIANTS))
    try:
        samples, phones = synthesize(text, voice, rate=int(rng.integers(120, 230)),
                                     pitch=int(rng.integers(20, 80)),
                                     pitch_range=int(rng.integers(20, 90)),
                                     word_gap=int(rng.integers(0, 4)))
    except ValueError:
        samples, phones = synthesize(text, VOICES[lang][0])
    # leading/trailing silence so the model sees the mouth at rest
    pre, post = rng.integers(5, 40) * 160, rng.integers(5, 40) * 160
    samples = np.pad(samples, (pre, post))
    phones = [(p, s + pre / 16000, e + pre / 16000) for p, s, e in phones]
    if augment:
        samples = augment_audio(samples, rng)
    feats = input_features(compute_features(samples))
    targets = visemes.track_from_phonemes(phones, feats.shape[0], FEATURE_RATE)
    weight = np.ones(feats.shape[0], np.float32)
    if return_samples:
        return feats, targets, weight, samples
    return feats, targets, weight


def augment_audio(x, rng):
    """Random gain, EQ tilt, small-room reverb and noise: close the gap between espeak's
    clean formant synthesis and a phone microphone."""
    from scipy.signal import fftconvolve, lfilter

    x = x.astype(np.float64)
    if rng.random() < 0.5:     # spectral tilt / band limit
        a = rng.uniform(-0.9, 0.9)
        x = lfilter([1.0, -a], [1.0], x) if a > 0 else lfilter([1.0 + a], [1.0, a], x)
    if rng.random() < 0.4:     # reverb: exponentially decaying noise tail
        n = int(16000 * rng.uniform(0.05, 0.3))
        ir = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 5))
        ir[0] = 1.0 / rng.uniform(0.05, 0.5)
        x = fftconvolve(x, ir)[: x.size]
    x = x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(0.1, 0.9)
    if rng.random() < 0.7:
        snr = rng.uniform(10, 40)
        noise = rng.standard_normal(x.size)
        if rng.random() < 0.5:   # brown-ish noise
            noise = lfilter([1.0], [1.0, -0.95], noise)
        p = np.mean(x[np.abs(x) > 0.01] ** 2) if np.any(np.abs(x) > 0.01) else 1e-4
        noise *= np.sqrt(p / 10 ** (snr / 10) / (np.mean(noise ** 2) + 1e-12))
        x = x + noise
    return np.clip(x, -1, 1).astype(np.float32)


def synthetic_corpus(n_per_lang, *, seed=0, langs=None, augment=True):
    """List of synthetic examples, deterministic for a seed (espeak is deterministic)."""
    langs = langs or list(SENTENCES)
    out = []
    for i, lang in enumerate(langs):
        rng = np.random.default_rng([seed, i])
        for _ in range(n_per_lang):
            out.append(synthetic_example(lang, rng, augment=augment))
    return out
