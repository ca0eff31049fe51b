"""Tiny uploads that are huge once decoded (issue 17, High 1). Each is refused from its stream
header before anything is decoded, with a clear message in the user's language, while the process
that serves the upload stays within a memory bound; decoding that is still needed is capped at the
team's limit (audio) or a time budget (video)."""
from __future__ import annotations

import struct
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rel_hostile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

MEMORY_BOUND_MIB = 300


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "wav-1hz-40k": rel_hostile.wav_with_rate(folder / "one-hz.wav", rate=1),
        "wav-1hz-160k": rel_hostile.wav_with_rate(folder / "one-hz-160k.wav", rate=1, data_bytes=160 * 1024),
        "wav-2mhz": rel_hostile.wav_with_rate(folder / "two-mhz.wav", rate=2_000_000),
        "mp4-16000": rel_hostile.mp4_declaring(folder / "huge.mp4"),
        "h264-16000": rel_hostile.h264_declaring(folder / "huge-raw.mp4"),
    }


@pytest.fixture
def api_client(cast):
    from accounts.api_keys import apikey_create

    return Client(headers={"Authorization": f"Bearer {apikey_create(team=cast.acme, name='hostile')[1]}"})


@pytest.fixture
def stub_template(cast, media_dir, settings):
    import shutil

    from jobs.models import Template

    template = Template(team=cast.acme, name="stub", width=700, height=700, duration=6.0, fps=22, prep_status="ready")
    template.file.name = f"teams/{cast.acme.pk}/templates/{template.id}/source.mp4"
    dest = Path(settings.MEDIA_ROOT) / template.file.name
    dest.parent.mkdir(parents=True)
    shutil.copyfile(media_dir / "face_square_1.mp4", dest)
    template.save()
    return template


@contextmanager
def peak_rss_growth():
    """Samples this process's RSS every 5 ms; yields a dict whose "mib" is the peak growth."""
    import psutil

    proc = psutil.Process()
    result = {"mib": 0.0}
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        result["mib"] = (peak[0] - before) / 1024 / 1024


def _upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/octet-stream")


@pytest.mark.parametrize("case", ["wav-1hz-40k", "wav-1hz-160k", "wav-2mhz"])
def test_absurd_sample_rate_is_refused_before_decoding(case, hostile, cast, api_client, stub_template, settings):
    """The probe's finding: a 40 KB WAV declaring 1 Hz took the web process from 224 MiB to
    7 GiB (160 KB: OOM). Now a 400 naming the rate, at once, with flat memory."""
    from jobs.models import Job

    started = time.monotonic()
    with peak_rss_growth() as growth:
        response = api_client.post(reverse("api_job_list"), {"audio": _upload(hostile[case]),
                                                             "template_ids": [str(stub_template.pk)]})
    elapsed = time.monotonic() - started
    print(f"{case} ({hostile[case].stat().st_size // 1024} KB): {response.status_code} in {elapsed:.2f} s, +{growth['mib']:.0f} MiB")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "sample_rate", error
    assert "Hz" in error["message"] and "Traceback" not in error["message"]
    assert growth["mib"] < MEMORY_BOUND_MIB, f"{case}: the request grew the process by {growth['mib']:.0f} MiB"
    assert elapsed < 5, f"{case}: refusing took {elapsed:.1f} s"
    assert not Job.objects.exists()


def test_sample_rate_refusal_speaks_the_users_language(hostile, cast, stub_template):
    client = Client(headers={"Accept-Language": "zh-hans"})
    client.force_login(cast.alice)
    response = client.post(reverse("job_new"), {"audio": _upload(hostile["wav-1hz-40k"]), "templates": [str(stub_template.pk)],
                                                "priority": "default", "title": "x"}, headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 400, response.content
    text = " ".join(response.json()["errors"])
    assert "采样率" in text and "Hz" in text, text


@pytest.mark.parametrize("case", ["mp4-16000", "h264-16000"])
def test_huge_declared_video_is_refused_from_its_stream_header(case, hostile, cast, api_client, settings):
    """A few-KB H.264 declaring 16000×16000: formerly decoded (1.4 GiB) before the pixel check."""
    from jobs.models import Template

    assert hostile[case].stat().st_size < 60 * 1024
    started = time.monotonic()
    with peak_rss_growth() as growth:
        response = api_client.post(reverse("api_template_list"), {"file": _upload(hostile[case], "presenter.mp4")})
    elapsed = time.monotonic() - started
    print(f"{case} ({hostile[case].stat().st_size} bytes): {response.status_code} in {elapsed:.2f} s, +{growth['mib']:.0f} MiB")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "too_big", error
    assert "16000×16000" in error["message"]
    assert growth["mib"] < MEMORY_BOUND_MIB, f"{case}: the request grew the process by {growth['mib']:.0f} MiB"
    assert elapsed < 2, f"{case}: refusing took {elapsed:.1f} s (frames were decoded)"
    assert not Template.objects.exists()


def test_huge_video_sent_as_batch_audio_is_not_decoded_either(hostile, cast, api_client, stub_template):
    """The batch's audio may be a video file (mp4/mov/mkv); its frames are just as dangerous."""
    started = time.monotonic()
    with peak_rss_growth() as growth:
        response = api_client.post(reverse("api_job_list"), {"audio": _upload(hostile["mp4-16000"], "voice.mp4"),
                                                             "template_ids": [str(stub_template.pk)]})
    assert response.status_code == 400, response.content
    assert growth["mib"] < MEMORY_BOUND_MIB and time.monotonic() - started < 2


def test_long_gop_upload_is_bounded_by_the_inspection_budget(cast, api_client, settings, tmp_path):
    """One keyframe for the whole file: the end-of-file check and the poster decode from the
    start (a 20 s file: about 450 frames to decode for the end-of-file check). With a budget
    of 0.01 s the web process stops there and says why."""
    from jobs.models import Template

    video = rel_hostile.long_gop_video(tmp_path / "gop.mp4", seconds=20)
    settings.UPLOAD_INSPECT_SECONDS = 0.01
    started = time.monotonic()
    response = api_client.post(reverse("api_template_list"), {"file": _upload(video)})
    elapsed = time.monotonic() - started
    print(f"long GOP ({video.stat().st_size // 1024} KB, budget 0.01 s): {response.status_code} in {elapsed:.2f} s")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "too_slow" and "keyframe" in error["message"], error
    assert elapsed < 2
    assert not Template.objects.exists()
    # With the default budget the same file is an ordinary template.
    settings.UPLOAD_INSPECT_SECONDS = 6.0
    response = api_client.post(reverse("api_template_list"), {"file": _upload(video)})
    assert response.status_code == 201, response.content


def _mkv_pcm_declaring(path: Path, *, seconds: float, declared: float, rate: int = 8000) -> Path:
    """PCM audio in Matroska whose Duration element claims `declared` seconds while the blocks
    hold `seconds`: only decoding finds the real length."""
    import av

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        for start in range(0, samples.size, 4096):
            frame = av.AudioFrame.from_ndarray((samples[None, start:start + 4096] * 32767).astype(np.int16),
                                               format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    assert at > 0
    data[at + 3:at + 11] = struct.pack(">d", declared * 1000.0)
    path.write_bytes(bytes(data))
    return path


def test_decoding_stops_at_the_limit_when_the_header_lies(tmp_path):
    """20 minutes of audio whose header says 1 s: decode_audio stops once the output passes the
    limit instead of decoding (and holding) all of it."""
    from lipsync.media import MediaLimitError, decode_audio

    path = _mkv_pcm_declaring(tmp_path / "liar.mkv", seconds=1200, declared=1)
    with peak_rss_growth() as growth:
        with pytest.raises(MediaLimitError) as caught:
            decode_audio(path, max_seconds=10)
    assert caught.value.kind == "duration" and caught.value.limit == 10
    assert growth["mib"] < 40, f"decoding grew the process by {growth['mib']:.0f} MiB"
    assert decode_audio(path).size == 1200 * 16000  # without a limit: all of it


def test_audio_longer_than_the_team_limit_by_header_is_refused_before_decoding(cast, api_client, stub_template, tmp_path):
    from jobs.models import Job

    path = _mkv_pcm_declaring(tmp_path / "long.mkv", seconds=30, declared=30)
    cast.acme.audio_max_seconds = 10
    cast.acme.save()
    response = api_client.post(reverse("api_job_list"), {"audio": _upload(path), "template_ids": [str(stub_template.pk)]})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "too_long" and "0:30" in error["message"], error
    assert not Job.objects.exists()
