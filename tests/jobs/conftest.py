"""Fixtures of the jobs tests: short real audio, uploads from ../shared/media, a warm template
preparation cache (so each test does not track faces again), and real RQ burst workers."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from jobs_testutil import cut_audio, upload_of


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


@pytest.fixture(scope="session")
def prep_cache(media_dir, tmp_path_factory):
    """Face tracking of each shared template, done once per session: {file name: (npz, mtime_ns)}."""
    from lipsync.prepare import cache_path, prepare_template

    folder = tmp_path_factory.mktemp("prep")
    cache = {}

    def get(name: str):
        if name not in cache:
            video = folder / name
            shutil.copy2(media_dir / name, video)
            prepare_template(video)
            cache[name] = (cache_path(video), video.stat().st_mtime_ns)
        return cache[name]

    return get


@pytest.fixture
def make_template(cast, media_dir, prep_cache):
    """Upload a real template for a team and give it the session's face-tracking cache."""
    from jobs import services
    from lipsync.prepare import cache_path

    def make(name="face_square_1.mp4", *, team=None, user=None, warm=True, title=None):
        team = team or cast.acme
        template = services.template_upload(team=team, user=user or cast.alice, uploaded_file=upload_of(media_dir / name),
                                            name=title or Path(name).stem)
        if warm:
            npz, mtime_ns = prep_cache(name)
            os.utime(template.file.path, ns=(mtime_ns, mtime_ns))
            shutil.copy(npz, cache_path(template.file.path))
        return template

    return make


@pytest.fixture
def make_job(cast, short_audio):
    from jobs import services

    def make(templates, *, team=None, user=None, priority="default", audio=None, title=""):
        return services.job_create(team=team or cast.acme, user=user or cast.alice, audio_file=upload_of(audio or short_audio),
                                   template_ids=[t.pk for t in templates], priority=priority, title=title)

    return make


@pytest.fixture
def run_worker(redis_conn):
    """A real RQ worker in this process (the engine loads once per test session)."""
    import django_rq

    from jobs.worker import RenderWorker

    def run(queues=("high", "default", "low"), *, max_jobs=None):
        qs = [django_rq.get_queue(q) for q in queues]
        worker = RenderWorker(qs, connection=qs[0].connection, watchdog=False)
        worker.work(burst=True, max_jobs=max_jobs, with_scheduler=True)
        return worker

    return run


@pytest.fixture
def rq_queue_ids(redis_conn):
    import django_rq

    def ids(name="default"):
        return django_rq.get_queue(name).job_ids

    return ids
