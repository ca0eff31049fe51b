"""docker/launch_workers.py as the GPU worker container runs it: real child processes, one per
GPU with CUDA_VISIBLE_DEVICES pinned, SIGTERM forwarded, crashed children restarted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "docker" / "launch_workers.py"

# A stand-in worker: records what it was given, then behaves like RQ's warm shutdown (finishes
# "its render" and exits 0 on SIGTERM).
CHILD = r"""
import json, os, signal, sys, time
out = sys.argv[1]
def stop(*_):
    with open(out + ".stopped", "w") as f:
        f.write("1")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with open(out, "w") as f:
    json.dump({"argv": sys.argv[2:], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}, f)
while True:
    time.sleep(0.05)
"""


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _shutdown(proc):
    """On a failed assertion: SIGTERM lets the launcher take its children down with it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _launch(tmp_path, *args, env=None):
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), *args, "--", sys.executable, str(child), str(tmp_path / "{slot}.json"),
         "renderworker", "--device", "{device}", "--queues", "{queues}", "--name", "{host}-{slot}"],
        env={**os.environ, "WORKER_QUEUES": "high,default,low", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.slow
def test_one_pinned_worker_per_gpu_and_sigterm_drains_them_all(tmp_path):
    proc = _launch(tmp_path, "--gpus", "0,1,3")
    try:
        slots = ["gpu0", "gpu1", "gpu3"]
        assert _wait(lambda: all((tmp_path / f"{s}.json").exists() for s in slots)), proc.stdout.read() if proc.poll() is not None else ""
        time.sleep(0.2)
        seen = {s: json.loads((tmp_path / f"{s}.json").read_text()) for s in slots}
        assert {s: v["cuda"] for s, v in seen.items()} == {"gpu0": "0", "gpu1": "1", "gpu3": "3"}
        for slot, value in seen.items():
            argv = value["argv"]
            assert argv[argv.index("--device") + 1] == "cuda:0"  # each process sees its GPU as cuda:0
            assert argv[argv.index("--queues") + 1] == "high,default,low"
            assert argv[argv.index("--name") + 1].endswith(f"-{slot}")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert all((tmp_path / f"{s}.json.stopped").exists() for s in slots)
    finally:
        _shutdown(proc)


def test_cuda_visible_devices_decides_when_auto(tmp_path):
    sys.path.insert(0, str(LAUNCHER.parent))
    try:
        import launch_workers
    finally:
        sys.path.pop(0)
    os.environ["CUDA_VISIBLE_DEVICES"] = "2,5"
    try:
        assert launch_workers.visible_gpus("auto") == ["2", "5"]
        plan = launch_workers.plan(device_kind="gpu", gpus="auto", processes=1, command=["w", "{device}", "{gpu}"],
                                   queues="q", host="h")
        assert [(slot, argv, env) for slot, argv, env in plan] == [
            ("gpu2", ["w", "cuda:0", "2"], {"CUDA_VISIBLE_DEVICES": "2"}),
            ("gpu5", ["w", "cuda:0", "5"], {"CUDA_VISIBLE_DEVICES": "5"}),
        ]
        cpu = launch_workers.plan(device_kind="cpu", gpus="auto", processes=2, command=["w", "{device}", "{slot}"],
                                  queues="q", host="h")
        assert [argv for _, argv, _ in cpu] == [["w", "cpu", "cpu0"], ["w", "cpu", "cpu1"]]
        assert all(env == {"CUDA_VISIBLE_DEVICES": ""} for _, _, env in cpu)
    finally:
        del os.environ["CUDA_VISIBLE_DEVICES"]


@pytest.mark.slow
def test_a_crashed_worker_is_restarted_and_the_others_keep_running(tmp_path):
    proc = _launch(tmp_path, "--gpus", "0,1")
    try:
        assert _wait(lambda: (tmp_path / "gpu0.json").exists() and (tmp_path / "gpu1.json").exists())
        first = json.loads((tmp_path / "gpu1.json").read_text())
        (tmp_path / "gpu1.json").unlink()
        pids = subprocess.run(["pgrep", "-f", f"{tmp_path}/gpu1.json"], capture_output=True, text=True).stdout.split()
        assert len(pids) == 1
        os.kill(int(pids[0]), signal.SIGKILL)
        assert _wait(lambda: (tmp_path / "gpu1.json").exists(), timeout=10), "gpu1 was not restarted"
        assert json.loads((tmp_path / "gpu1.json").read_text()) == first
        assert not (tmp_path / "gpu0.json.stopped").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        _shutdown(proc)


def test_no_gpu_visible_fails_loudly(tmp_path):
    proc = _launch(tmp_path, "--gpus", "auto", env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/nonexistent"})
    # torch is importable here, and this machine has no GPU: zero devices, exit 2 with a reason.
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "no GPU visible" in out
