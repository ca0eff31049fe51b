"""Phoneme glue: espeak-ng synthesis with phoneme timings, pocketsphinx phone recognition.

Both are optional at run time (training and English phoneme timings need them; the motion
model itself only needs audio features). Neither downloads anything: espeakng-loader ships
libespeak-ng with its data, the pocketsphinx wheel ships its English acoustic model.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

_EVENT_PHONEME = 7              # espeakEVENT_PHONEME; 0 terminates an event list


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))
_lock = threading.Lock()
_lib = None
_rate = 0
_sink: dict = {}


def _espeak():
    global _lib, _rate, _callback
    if _lib is None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        # AUDIO_OUTPUT_SYNCHRONOUS; options: phoneme events, IPA names, don't exit on error
        rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(),
                                     0x0001 | 0x0002 | 0x8000)
        if rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        _callback = _CALLBACK(_on_synth)
        lib.espeak_SetSynthCallback(_callback)
        _lib, _rate = lib, rate
    return _lib


def _on_synth(wav, n, events):
    if n > 0:
        _sink["audio"].append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    i = 0
    while events[i].type != 0:
        ev = events[i]
        if ev.type == _EVENT_PHONEME:
            name = ev.id.string.decode("utf-8", "replace")
            _sink["events"].append((name, ev.audio_position / 1000.0))
        i += 1
    return 0


def synthesize(text: str, voice: str = "en", *, rate: int = 160, pitch: int = 50,
               pitch_range: int = 50, word_gap: int = 0):
    """Speak ``text`` with espeak-ng.

    Returns (samples (N,) float32 at 16 kHz in [-1, 1], phonemes [(ipa, start_s, end_s)]).
    rate is words per minute; pitch and pitch_range are 0..100.
    """
    from scipy.signal import resample_poly

    with _lock:
        lib = _espeak()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((1, rate), (3, pitch), (4, pitch_range), (7, word_gap)):
            lib.espeak_SetParameter(param, int(value), 0)
        _sink.clear()
        _sink.update(audio=[], events=[])
        data = text.encode("utf-8") + b"\0"
        # POS_CHARACTER=1, flags espeakCHARS_UTF8=1
        lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
        lib.espeak_Synchronize()
        audio = np.concatenate(_sink["audio"]) if _sink["audio"] else np.zeros(0, np.int16)
        events = list(_sink["events"])
    x = audio.astype(np.float32) / 32768.0
    x = resample_poly(x, 16000 // 50, _rate // 50).astype(np.float32) if _rate != 16000 else x
    duration = x.size / 16000.0
    phones = []
    for k, (name, start) in enumerate(events):
        end = events[k + 1][1] if k + 1 < len(events) else duration
        if end > start:
            phones.append((name, start, min(end, duration)))
    return x, phones


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
