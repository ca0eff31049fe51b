"""The command line: exit codes and one-line errors (run as a subprocess, like users do)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lipsync_testutil import media

REPO = Path(__file__).resolve().parents[2]


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lipsync", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_probe_ok():
    r = run("probe", media("face_square_2.mp4"))
    assert r.returncode == 0
    info = json.loads(r.stdout)
    assert info["width"] == 844 and info["has_audio"]


@pytest.mark.parametrize("name", ["truncated", "empty", "text"])
def test_probe_bad(broken_files, name):
    r = run("probe", broken_files[name])
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


def test_render_bad_inputs_one_line(broken_files, no_face_video, speech_2s, outdir):
    cases = [
        (broken_files["text"], speech_2s),
        (media("face_square_3.mp4"), broken_files["empty"]),
        (media("face_square_3.mp4"), outdir / "missing.wav"),
        (no_face_video, speech_2s),
    ]
    for tpl, audio in cases:
        r = run("render", "--template", tpl, "--audio", audio, "--out", outdir / "o.mp4", "-q")
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert not any(p.name.endswith(".mp4") for p in outdir.iterdir())


def test_render_unknown_engine(speech_2s, outdir):
    r = run("render", "--template", media("face_square_3.mp4"), "--audio", speech_2s,
            "--out", outdir / "o.mp4", "--engine", "nope", "-q")
    assert r.returncode == 1 and "Unknown engine" in r.stderr


@pytest.mark.slow
def test_render_ok_with_progress(tmp_path, speech_2s, outdir):
    # copy-free: the template's cache goes beside it, so use a private copy via a symlink dir
    tpl = tmp_path / "tpl.mp4"
    os.symlink(media("face_square_3.mp4"), tpl)
    out = outdir / "o.mp4"
    r = run("render", "--template", tpl, "--audio", speech_2s, "--out", out, "--device", "cpu",
            "--fps", "24")
    assert r.returncode == 0, r.stderr
    assert "rendering" in r.stderr and "100%" in r.stderr
    assert out.exists()
    r = run("evaluate", out)
    assert r.returncode == 0
    s = json.loads(r.stdout)
    assert abs(s["sync_lag"]) <= 5
