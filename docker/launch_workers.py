#!/usr/bin/env python3
"""Start one render worker per visible GPU (or N on CPU), pinned with CUDA_VISIBLE_DEVICES.

    launch_workers.py [--gpus auto|0,1,...] [--processes N] -- COMMAND...

COMMAND may hold placeholders: {device} (cuda:0 inside each pinned process, or cpu),
{queues} ($WORKER_QUEUES), {host} (the hostname), {slot} (gpu0, gpu1, ... or cpu0, ...),
{gpu} (the GPU's index on the host). The worker image runs:

    launch_workers.py -- python manage.py renderworker --device {device} --queues {queues} --name {host}-{slot}

Why a launcher and not one container per GPU: one container per host keeps compose files the
same for any number of GPUs. Each process sees exactly one GPU as cuda:0, so the engine never
has to choose. SIGTERM/SIGINT are forwarded to every worker (RQ's warm shutdown: the render in
progress is re-queued or finished) and the launcher exits once all have. A worker that dies on
its own is restarted with a growing pause, so one bad GPU does not drain its neighbours.
Standard library only: it runs before anything else is imported.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time


def visible_gpus(spec: str) -> list[str]:
    """GPU indices to use: an explicit list, else CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    if spec and spec != "auto":
        return [g.strip() for g in spec.split(",") if g.strip()]
    env = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if env and env not in ("all", "none", "void", "-1"):
        return [g.strip() for g in env.split(",") if g.strip()]
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return [line.strip() for line in out.stdout.splitlines() if line.strip()]
    try:  # the driver is there but nvidia-smi is not (some minimal images)
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def plan(*, device_kind: str, gpus: str, processes: int, command: list[str], queues: str, host: str) -> list[tuple[str, list[str], dict]]:
    """(slot, argv, extra env) for each worker process to run."""
    slots = []
    if device_kind == "cpu":
        for i in range(max(1, processes)):
            slots.append((f"cpu{i}", "cpu", "", {"CUDA_VISIBLE_DEVICES": ""}))
    else:
        for index in visible_gpus(gpus):
            for i in range(max(1, processes)):
                slot = f"gpu{index}" if processes <= 1 else f"gpu{index}-{i}"
                slots.append((slot, "cuda:0", index, {"CUDA_VISIBLE_DEVICES": index}))
    result = []
    for slot, device, gpu, env in slots:
        values = {"device": device, "queues": queues, "host": host, "slot": slot, "gpu": gpu}
        result.append((slot, [part.format(**values) for part in command], env))
    return result


class Launcher:
    def __init__(self, workers: list[tuple[str, list[str], dict]], *, restart_max_pause: float = 60.0):
        self.workers = workers
        self.procs: dict[str, subprocess.Popen] = {}
        self.failures: dict[str, int] = {}
        self.restart_at: dict[str, float] = {}
        self.stopping = False
        self.restart_max_pause = restart_max_pause
        self.exit_codes: dict[str, int] = {}

    def log(self, message: str) -> None:
        print(f"launch_workers: {message}", file=sys.stderr, flush=True)

    def start(self, slot: str, argv: list[str], env: dict) -> None:
        # Own session: a terminal's Ctrl-C reaches only the launcher, which forwards it once.
        self.procs[slot] = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)
        self.log(f"{slot}: started pid {self.procs[slot].pid}: {' '.join(argv)}")

    def forward(self, signum, _frame=None) -> None:
        self.stopping = True
        self.log(f"{signal.Signals(signum).name}: asking {len(self.procs)} worker(s) to finish or re-queue")
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def run(self) -> int:
        if not self.workers:
            self.log("no GPU visible: set WORKER_DEVICE=cpu for a CPU worker, or check the NVIDIA runtime")
            return 2
        signal.signal(signal.SIGTERM, self.forward)
        signal.signal(signal.SIGINT, self.forward)
        specs = {slot: (argv, env) for slot, argv, env in self.workers}
        for slot, (argv, env) in specs.items():
            self.start(slot, argv, env)
        while True:
            for slot, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None or slot in self.exit_codes:
                    continue
                if self.stopping:
                    self.exit_codes[slot] = code
                    self.log(f"{slot}: exited with {code}")
                    continue
                now = time.monotonic()
                if slot not in self.restart_at:
                    self.failures[slot] = self.failures.get(slot, 0) + 1
                    pause = min(self.restart_max_pause, 2.0 ** (self.failures[slot] - 1))
                    self.restart_at[slot] = now + pause
                    self.log(f"{slot}: exited with {code} on its own; restarting in {pause:.0f} s")
                elif now >= self.restart_at[slot]:
                    del self.restart_at[slot]
                    self.start(slot, *specs[slot])
            if self.stopping and len(self.exit_codes) == len(self.procs):
                return 0 if all(c == 0 for c in self.exit_codes.values()) else 1
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", default=os.environ.get("WORKER_GPUS", "auto"))
    parser.add_argument("--device", default=os.environ.get("WORKER_DEVICE", "gpu"), choices=("gpu", "cpu"))
    parser.add_argument("--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES", "1")),
                        help="workers per GPU (or in total on CPU)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the worker command after --")
    workers = plan(device_kind=args.device, gpus=args.gpus, processes=args.processes, command=command,
                   queues=os.environ.get("WORKER_QUEUES", "high,default,low"), host=socket.gethostname())
    return Launcher(workers).run()


if __name__ == "__main__":
    sys.exit(main())
