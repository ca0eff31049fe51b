"""The one upload intake (jobs.services.intake): every upload is probed once, audio decoded once,
each file hashed once; the engine's errors become ValidationErrors with a code."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from testutil import upload_of

import lipsync.media
import lipsync.probing
from jobs import services
from jobs.services import intake

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """Counts of the engine's probe / decode_audio and the intake's hash while a test runs."""
    counts = Counter()

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(lipsync.probing, "probe", counting("probe", lipsync.probing.probe))
    monkeypatch.setattr(lipsync.media, "decode_audio", counting("decode_audio", lipsync.media.decode_audio))
    monkeypatch.setattr(intake, "_sha256", counting("sha256", intake._sha256))
    return counts


def test_a_template_is_probed_once_and_hashed_once(cast, media_dir, calls, redis_conn):
    template = services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(media_dir / "face_square_1.mp4"))
    assert template.duration > 0 and template.poster and template.sha256
    assert calls == Counter({"probe": 1, "sha256": 1})


def test_batch_audio_is_probed_decoded_and_hashed_once(cast, make_template, short_audio, calls, redis_conn,
                                                       django_capture_on_commit_callbacks):
    template = make_template("face_square_1.mp4")
    calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(team=cast.acme, user=cast.alice, audio_file=upload_of(short_audio), template_ids=[template.pk])
    assert job.audio_duration == pytest.approx(2.0, abs=0.05) and job.audio_sha256
    assert calls == Counter({"probe": 1, "decode_audio": 1, "sha256": 1})


def test_engine_errors_become_validation_errors_with_a_code():
    from lipsync.errors import NoFaceError, SilentAudioError, UndecodableMediaError

    cases = [(UndecodableMediaError("x"), "undecodable"), (SilentAudioError("x"), "silent"),
             (NoFaceError("no face"), "no_face"), (ValueError("bad value"), "invalid")]
    for error, code in cases:
        with pytest.raises(ValidationError) as caught, intake.engine_errors(kind="audio"):
            raise error
        assert caught.value.code == code


def test_a_refused_upload_leaves_no_file(cast, media_dir, settings, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(ValidationError) as caught:
        services.template_upload(team=cast.acme, user=cast.alice, uploaded_file=upload_of(text))
    assert caught.value.code == "undecodable"
    assert not [p for p in (Path(settings.MEDIA_ROOT) / "teams").rglob("*") if p.is_file()]


def test_jobs_never_imports_pyav():
    offenders = []
    for path in (ROOT / "jobs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "av" or n.startswith("av.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "PyAV stays inside lipsync/: " + ", ".join(offenders)
