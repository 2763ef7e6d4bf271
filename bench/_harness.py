"""Processes: start a tool in its own session, follow its tree, stop it, and never leave one behind.

The benchmark makes itself a child subreaper (Linux): whatever a tool orphans is re-parented
to the benchmark instead of init, so the final sweep (every descendant, SIGKILL) finds it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return False
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def take_over_run() -> bool:
    """Signals and reaping for a benchmark run; False when orphans may escape the final sweep.

    Ctrl+C must work even when the run was started with SIGINT ignored (a background job of a
    script): the tools inherit what we have, and their Ctrl+C is what gets measured. SIGTERM
    and SIGHUP end the run the same way, so every process started is still ended.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    return become_subreaper()


def alive(proc: psutil.Process | None) -> bool:
    """Running and not a zombie (a zombie has exited; it only waits to be reaped)."""
    if proc is None:
        return False
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def kill(procs: Iterable[psutil.Process | None]) -> int:
    """SIGKILL each (psutil checks the start time, so a reused pid is left alone)."""
    count = 0
    for proc in procs:
        if alive(proc):
            try:
                assert proc is not None
                proc.kill()
                count += 1
            except psutil.Error:
                pass
    return count


class Registry:
    """Everything the benchmark started, for the final sweep."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[bytes]] = []
        self.seen: dict[tuple[int, float], psutil.Process] = {}

    def remember(self, procs: Iterable[psutil.Process]) -> None:
        for proc in procs:
            try:
                self.seen.setdefault((proc.pid, proc.create_time()), proc)
            except psutil.Error:
                pass

    def reap(self) -> None:
        """Reap zombies re-parented to us (not our own Popen children: Popen waits for those)."""
        own = {popen.pid for popen in self.popens}
        for popen in self.popens:
            popen.poll()
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return
        for child in children:
            if child.pid in own:
                continue
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError, OSError):
                pass

    def sweep(self) -> int:
        """SIGKILL every process group we made, every process we saw, every descendant."""
        for popen in self.popens:
            if popen.poll() is None:
                try:
                    os.killpg(popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            descendants = psutil.Process().children(recursive=True)
        except psutil.Error:
            descendants = []
        killed = kill([*self.seen.values(), *descendants])
        deadline = time.monotonic() + 3
        for popen in self.popens:
            try:
                popen.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.05)
        self.reap()
        return killed


@dataclass(frozen=True)
class Start:
    """One app start-up, as the app wrote it to starts.log."""

    time: float
    pid: int
    helper: int
    detached: int


class StartBook:
    """Reads starts.log and keeps a psutil handle per recorded pid (taken at first sight)."""

    def __init__(self, path: Path, registry: Registry) -> None:
        self.path = path
        self.registry = registry
        self.starts: list[Start] = []
        self.procs: dict[int, psutil.Process | None] = {}

    def refresh(self) -> list[Start]:
        try:
            lines = self.path.read_text().split("\n")[:-1]  # complete lines only
        except FileNotFoundError:
            lines = []
        for line in lines[len(self.starts) :]:
            parts = line.split()
            if len(parts) != 4:
                break  # a line being written
            start = Start(float(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]))
            self.starts.append(start)
            for pid in (start.pid, start.helper, start.detached):
                proc = process(pid)
                self.procs[pid] = proc
                if proc is not None:
                    self.registry.remember([proc])
        return self.starts

    def since(self, when: float) -> list[Start]:
        return [start for start in self.refresh() if start.time > when]

    def proc(self, pid: int) -> psutil.Process | None:
        return self.procs.get(pid)

    def wait_quiet(self, quiet: float, limit: float) -> None:
        """Until no new start-up for ``quiet`` seconds (at most ``limit`` seconds)."""
        end = time.monotonic() + limit
        count = len(self.refresh())
        last_change = time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.05)
            now_count = len(self.refresh())
            if now_count != count:
                count, last_change = now_count, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return

    def stale(self) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(old app processes, old helpers) still alive: every instance but the latest."""
        starts = self.refresh()
        apps: list[psutil.Process] = []
        helpers: list[psutil.Process] = []
        for start in starts[:-1]:
            proc = self.proc(start.pid)
            if alive(proc):
                assert proc is not None
                apps.append(proc)
            for pid in (start.helper, start.detached):
                proc = self.proc(pid)
                if alive(proc):
                    assert proc is not None
                    helpers.append(proc)
        return apps, helpers

    def all_procs(self) -> list[psutil.Process]:
        self.refresh()
        return [proc for proc in self.procs.values() if proc is not None]


def _stamp_lines(stream: IO[bytes], path: Path) -> None:
    with stream, open(path, "ab", buffering=0) as handle:
        for line in iter(stream.readline, b""):
            handle.write(f"{time.monotonic():.4f} ".encode() + line)


class ToolProcess:
    """One run of a tool: its own session (and process group), output to a log file."""

    def __init__(
        self, argv: Sequence[str], cwd: Path, env: dict[str, str], log: Path, registry: Registry,
        *, timestamps: bool = False,
    ) -> None:
        """``timestamps``: each output line is logged after ``time.monotonic()`` at its arrival
        (read through a pipe by a thread), so a restart can be taken apart afterwards."""
        self.argv = list(argv)
        self.registry = registry
        self.log_path = log
        with open(log, "ab") as handle:
            handle.write(f"$ {' '.join(self.argv)}\n".encode())
            handle.flush()
            self.popen = subprocess.Popen(
                self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if timestamps else handle, stderr=subprocess.STDOUT, start_new_session=True,
            )
        if timestamps:
            assert self.popen.stdout is not None
            threading.Thread(target=_stamp_lines, args=(self.popen.stdout, log), name="tool-log", daemon=True).start()
        registry.popens.append(self.popen)
        self.started = time.monotonic()
        self.main = process(self.popen.pid)
        if self.main is not None:
            registry.remember([self.main])

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The main process and its current descendants (remembered for the sweep)."""
        if self.main is None or not alive(self.main):
            return []
        try:
            procs = [self.main, *self.main.children(recursive=True)]
        except psutil.Error:
            procs = [self.main]
        self.registry.remember(procs)
        return procs

    def rss(self) -> int | None:
        try:
            return self.main.memory_info().rss if self.main is not None else None
        except psutil.Error:
            return None

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def interrupt(self) -> None:
        """Ctrl+C as a terminal sends it: SIGINT to the whole (foreground) process group."""
        try:
            os.killpg(self.popen.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        procs = self.tree()
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill(procs)
        try:
            self.popen.wait(3)
        except subprocess.TimeoutExpired:
            pass


def cpu_seconds(procs: Iterable[psutil.Process]) -> dict[tuple[int, float], float]:
    """user+system CPU seconds per process (with reaped children's), keyed by (pid, start)."""
    times: dict[tuple[int, float], float] = {}
    for proc in procs:
        try:
            t = proc.cpu_times()
            times[(proc.pid, proc.create_time())] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return times


def tree_cpu_over(tool: ToolProcess, seconds: float) -> float:
    """CPU seconds the whole tree used over ``seconds`` of wall time (the caller stays idle)."""
    before = cpu_seconds(tool.tree())
    time.sleep(seconds)
    after = cpu_seconds(tool.tree())
    return sum(value - before.get(key, 0.0) for key, value in after.items())


def reloadkit_memory(tool: ToolProcess) -> dict[str, float | None]:
    """RSS (MB) of reloadkit's own processes: the supervisor with its guardian, and the warm parent.

    The supervisor's direct children are the guardian (a fork: the supervisor's command line),
    the warm parent (``warm_parent.py``, the oldest such child: every generation it forked is
    younger, re-parented to the supervisor) and the generations.
    """
    main = tool.main
    if main is None or not alive(main):
        return {"supervisor_mb": None, "warm_parent_mb": None}
    try:
        command = main.cmdline()
        supervisor = main.memory_info().rss
        warm: list[psutil.Process] = []
        for child in main.children():
            try:
                line = child.cmdline()
                if line == command:
                    supervisor += child.memory_info().rss
                elif "warm_parent.py" in " ".join(line):
                    warm.append(child)
            except psutil.Error:
                continue
        oldest = min(warm, key=lambda proc: proc.create_time()) if warm else None
        warm_rss = oldest.memory_info().rss if oldest is not None else None
    except psutil.Error:
        return {"supervisor_mb": None, "warm_parent_mb": None}
    return {
        "supervisor_mb": round(supervisor / 2**20, 1),
        "warm_parent_mb": None if warm_rss is None else round(warm_rss / 2**20, 1),
    }


def reloadkit_roles(tool: ToolProcess, serving: int | None) -> dict[str, list[psutil.Process]]:
    """reloadkit's processes by role: ``supervisor`` (with its guardian, a fork with the same
    command line), ``generation`` (the serving one, ``serving``, and its descendants) and
    ``warm_parents`` (every other child of the supervisor).

    A warm generation is a fork of a warm parent and keeps its command line, so the serving
    generation is told apart by pid (reloadkit's ``started pid N`` line), not by command line.
    """
    roles: dict[str, list[psutil.Process]] = {"supervisor": [], "warm_parents": [], "generation": []}
    main = tool.main
    if main is None or not alive(main):
        return roles
    try:
        command = main.cmdline()
        roles["supervisor"].append(main)
        for child in main.children():
            if child.pid == serving:
                roles["generation"] += [child, *child.children(recursive=True)]
            elif child.cmdline() == command:
                roles["supervisor"].append(child)
            elif alive(child):
                roles["warm_parents"].append(child)
    except psutil.Error:
        pass
    tool.registry.remember([proc for procs in roles.values() for proc in procs])
    return roles


def memory_mb(procs: Iterable[psutil.Process]) -> dict[str, float | int | None]:
    """Summed RSS and PSS in MB (PSS shares each shared page among the processes mapping it,
    so the PSS of several forks adds up to what they cost together)."""
    rss = pss = 0
    count = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", 0)
        count += 1
    if not count:
        return {"count": 0, "rss_mb": None, "pss_mb": None}
    return {"count": count, "rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1)}
