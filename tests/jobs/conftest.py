"""Fixtures of the jobs tests: short real audio. make_template, make_job, prep_cache and
run_worker (real templates, jobs and RQ burst workers) live in tests/conftest.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from testutil import cut_audio


@pytest.fixture(scope="session")
def short_audio(media_dir, tmp_path_factory) -> Path:
    """2 s of real English speech, 16 kHz mono WAV: keeps every render a few seconds on CPU."""
    return cut_audio(media_dir / "speech_en_1.wav", tmp_path_factory.mktemp("audio") / "speech_2s.wav", 2.0)


@pytest.fixture(scope="session")
def silent_audio(tmp_path_factory) -> Path:
    import av
    import numpy as np

    path = tmp_path_factory.mktemp("audio") / "silence.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture
def rq_queue_ids(redis_conn):
    import django_rq

    def ids(name="default"):
        return django_rq.get_queue(name).job_ids

    return ids
