"""The supervisor's live children: reaping, and ending each generation's whole tree.

Mechanics only (which child exited, which processes are left): what an exit means is the
state machine's (:mod:`reloadkit.supervisor.machine`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

import psutil

from reloadkit.proc import process
from reloadkit.proc.process import Child
from reloadkit.supervisor.policy import exit_status

__all__ = ["Children"]


class Children:
    """Every child (a generation's first process) the machine may still name, by pid."""

    def __init__(self, ours: Callable[[], set[int]]) -> None:
        self.by_pid: dict[int, Child] = {}
        self.ours = ours  # our own helpers among our direct children (guardian, warm parent)

    def add(self, child: Child) -> None:
        self.by_pid[child.pid] = child

    def get(self, pid: int) -> Child | None:
        return self.by_pid.get(pid)

    def __getitem__(self, pid: int) -> Child:
        return self.by_pid[pid]

    def __contains__(self, pid: object) -> bool:
        return pid in self.by_pid

    def alive(self, pid: int) -> bool:
        child = self.by_pid.get(pid)
        return child is not None and child.alive

    def live(self) -> list[Child]:
        return [child for child in self.by_pid.values() if child.alive]

    def forget(self, pid: int) -> None:
        self.by_pid.pop(pid, None)

    def reap(self) -> list[tuple[Child, int]]:
        """Children that exited, with their shell-style status: newest generation first (a
        new child that failed while an old one stopped sees it stopping)."""
        exited: list[tuple[Child, int]] = []
        for pid, status in _waited():
            child = self.by_pid.get(pid)
            if child is not None:
                child.returncode = exit_status(status)
                exited.append((child, child.returncode))
        return sorted(exited, key=lambda item: -item[0].generation)

    def end_tree(self, child: Child) -> None:
        """Kill what the child left: descendants seen earlier and orphans re-parented to us."""
        child.kill_tree()
        process.kill_processes(self._orphans_of(child.generation))

    def _orphans_of(self, generation: int) -> list[psutil.Process]:
        mine = {c.pid for c in self.live()} | self.ours()
        found: list[psutil.Process] = []
        direct = [pid for pid in process.direct_children(os.getpid()) if pid not in mine]
        for pid in direct:
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue  # already dead, waiting to be reaped
                owner = proc.environ().get("RELOADKIT_GENERATION")
            except (psutil.Error, OSError):
                continue
            if owner is None or owner == str(generation):
                found.append(proc)
                for below in process.descendants([pid]):
                    with contextlib.suppress(psutil.Error):
                        found.append(psutil.Process(below))
        return found

    def end_everything(self, spare: int | None) -> None:
        """Last resort on any exit path (an exception included): nothing may survive us but
        ``spare`` (the guardian, which ends itself)."""
        for child in self.live():
            child.kill_tree()
        deadline = time.monotonic() + 2.0
        while self.live() and time.monotonic() < deadline:
            self.reap()  # without deciding anything: we are on our way out
            time.sleep(0.002)
        try:
            leftovers = [proc for proc in psutil.Process().children(recursive=True) if proc.pid != spare]
        except psutil.Error:
            leftovers = []
        process.kill_processes(leftovers)


def _waited() -> list[tuple[int, int]]:
    """Every (pid, wait status) ready to be reaped now."""
    found: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        found.append((pid, status))
