"""What passing the child's stderr through the supervisor costs: the supervisor's CPU time
while a chatty child writes to stderr.

    python bench/stderr_cpu.py                 # 20 MB flood + 2000 lines/s for 5 s, 3 runs each
    python bench/stderr_cpu.py --runs 1

Modes: ``direct`` (``--no-error-page``: the child writes to reloadkit's own stderr, nothing
passes through reloadkit), ``pipe`` (the default when reloadkit's stderr is not a terminal)
and ``pty`` (reloadkit's stderr is a terminal, so the child's is a pty of reloadkit's). In
every mode the benchmark drains reloadkit's stderr (a pipe or a pty) as fast as it comes.
The supervisor's CPU time (user + system, from /proc) is read when the child has written
everything, minus what it had used once the child started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import os, sys, time
mode, amount = sys.argv[1], float(sys.argv[2])
line = ("x" * 99 + "\n").encode()
open("started", "w").close()
if mode == "flood":  # `amount` megabytes as fast as the pipe takes them
    chunk = line * 100
    for _ in range(int(amount * 1e6 / len(chunk))):
        os.write(2, chunk)
else:  # 2000 lines a second, one write each, for `amount` seconds
    end = time.monotonic() + amount
    next_at = time.monotonic()
    while time.monotonic() < end:
        os.write(2, line)
        next_at += 1 / 2000
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
open("done", "w").close()
import signal; signal.pause()
"""


def _drain(fd: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            if not os.read(fd, 1 << 16):
                return
        except OSError:
            return


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run_once(mode: str, load: str, amount: float) -> float:
    with tempfile.TemporaryDirectory(prefix="rk-stderr-") as tmp:
        app = Path(tmp) / "chatty.py"
        app.write_text(CHILD)
        options = ["--no-error-page"] if mode == "direct" else []
        argv = [sys.executable, "-m", "reloadkit", "run", "-q", "-w", tmp, *options,
                "--", sys.executable, str(app), load, str(amount)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if mode == "pty":
            read_fd, write_fd = pty.openpty()
        else:
            read_fd, write_fd = os.pipe()
        stop = threading.Event()
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=write_fd)
        os.close(write_fd)
        reader = threading.Thread(target=_drain, args=(read_fd, stop), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 60
            while not (Path(tmp) / "started").exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the child did not start")
                time.sleep(0.002)
            before = _cpu(proc.pid)
            while not (Path(tmp) / "done").exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the child did not finish")
                time.sleep(0.002)
            time.sleep(0.05)  # the supervisor copies the last chunks
            return _cpu(proc.pid) - before
        finally:
            with contextlib.suppress(psutil.Error):
                tree = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for child in tree:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            stop.set()
            os.close(read_fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    loads = [("flood", args.megabytes, f"{args.megabytes:g} MB flood"), ("steady", args.seconds, f"2000 lines/s for {args.seconds:g} s")]
    print(f"supervisor CPU seconds (median of {args.runs}); python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'load':<26} {'direct':>8} {'pipe':>8} {'pty':>8}")
    for load, amount, label in loads:
        cells = []
        for mode in ("direct", "pipe", "pty"):
            cells.append(statistics.median(run_once(mode, load, amount) for _ in range(args.runs)))
        print(f"{label:<26} " + " ".join(f"{cell:8.3f}" for cell in cells))


if __name__ == "__main__":
    main()
