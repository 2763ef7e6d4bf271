"""Process and terminal hygiene, proven with real processes.

No orphan survives reloadkit (not even a SIGKILLed reloadkit), a double-forked daemon is
found, every exit path leaves nothing, the child can use the terminal (``input()``, pdb),
the terminal is restored, and no descriptor or variable leaks where it must not.

The trees are grown by ``hygiene_apps/tree.py``, which records every pid it creates (role,
pid, generation) in a file, so each test knows every process that was ever in the tree,
including the ones that re-parented away. The terminal tests run reloadkit under a
pseudo-terminal with pexpect, which makes it a session leader with the pty as its
controlling terminal, as a shell would.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pexpect
import psutil
import pytest
from support import Reloadkit, http_get, reloadkit_env, wait_for, write_file

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the guarantees are Linux's"),
    # pexpect forks the pty's child from this (threaded) test process; that child only execs.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of forkpty:DeprecationWarning"),
]
APPS = Path(__file__).parent / "hygiene_apps"
TREE = APPS / "tree.py"
TERM = APPS / "term.py"
#: The issue's promise: after a SIGKILL of reloadkit, everything is gone within a second.
KILL_DEADLINE = 1.0
CONTRACT_PREFIXES = ("LISTEN_", "WERKZEUG_")
OWN_PREFIXES = ("LISTEN_", "WERKZEUG_", "RELOADKIT_", "NOTIFY_SOCKET")


# --- the recorded tree ------------------------------------------------------------------


def _records(path: Path) -> list[tuple[str, int, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        role, pid, generation = line.split()
        rows.append((role, int(pid), generation))
    return rows


def _tree(path: Path, generation: int, timeout: float = 30.0) -> dict[str, psutil.Process]:
    """Wait until ``generation`` recorded its whole tree; its processes by role ("ready" left out)."""
    wait_for(lambda: any(role == "ready" and gen == str(generation) for role, _, gen in _records(path)),
             timeout, f"generation {generation} to record its process tree in {path.name}")
    procs = {}
    for role, pid, gen in _records(path):
        if gen == str(generation) and role != "ready":
            try:
                procs[role] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                pytest.fail(f"{role} (pid {pid}) of generation {generation} died on its own")
    return procs


def _go(record: Path) -> None:
    """Let a child started with --exit=N exit now (the test has looked at its tree)."""
    Path(f"{record}.go").touch()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _survivors(procs: dict[str, psutil.Process]) -> dict[str, psutil.Process]:
    return {role: proc for role, proc in procs.items() if _alive(proc)}


def _describe(procs: dict[str, psutil.Process]) -> str:
    parts = []
    for role, proc in procs.items():
        with contextlib.suppress(psutil.Error):
            parts.append(f"{role} pid {proc.pid} ppid {proc.ppid()} {' '.join(proc.cmdline())[:80]!r}")
    return "; ".join(parts) or "(none)"


def _wait_gone(procs: dict[str, psutil.Process], timeout: float, after: str) -> float:
    """Wait (with a deadline) until no process of ``procs`` is alive; returns how long it took."""
    started = time.monotonic()
    try:
        wait_for(lambda: not _survivors(procs), timeout, f"every process to be gone {after}", interval=0.005)
    except pytest.fail.Exception:
        pytest.fail(f"still alive {timeout:g} s {after}: {_describe(_survivors(procs))}")
    return time.monotonic() - started


def _assert_alive(procs: dict[str, psutil.Process], what: str) -> None:
    dead = [role for role, proc in procs.items() if not _alive(proc)]
    assert not dead, f"{', '.join(dead)} of {what} should still run"


def _kill(procs: dict[str, psutil.Process]) -> None:
    for proc in procs.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _guardian(rk_pid: int, child_pids: set[int]) -> psutil.Process:
    """reloadkit's guardian: the forked copy of reloadkit (same command line) among its children."""
    root = psutil.Process(rk_pid)
    found = [proc for proc in root.children() if proc.pid not in child_pids and proc.cmdline() == root.cmdline()]
    assert len(found) == 1, f"expected one guardian, found {found}"
    return found[0]


# --- /proc ------------------------------------------------------------------------------


def _fds(pid: int) -> dict[int, str]:
    """The process's descriptors and what they point to (``socket:[INODE]``, ``pipe:[INODE]``, paths)."""
    table = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            table[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return table


def _cloexec(pid: int, fd: int) -> bool:
    with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
        flags = next(line.split()[1] for line in handle if line.startswith("flags:"))
    return bool(int(flags, 8) & 0o2000000)  # O_CLOEXEC


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        entries = handle.read().split(b"\0")
    return dict(entry.decode(errors="replace").split("=", 1) for entry in entries if b"=" in entry)


def _ours(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(OWN_PREFIXES)}


def _tcp_listener_inodes(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.append(fields[9])
    return found


def _tcp_listener_inode(port: int) -> str:
    """The one listening socket on the port (during a hand-over there are two, briefly)."""
    inodes = wait_for(lambda: found if len(found := _tcp_listener_inodes(port)) == 1 else None,
                      10, f"exactly one listening socket on port {port}")
    return inodes[0]


def _unix_inodes() -> dict[str, list[str]]:
    """Path (``@name`` for abstract ones) → inodes of the sockets bound to it."""
    found: dict[str, list[str]] = {}
    with open("/proc/net/unix") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8:
                found.setdefault(fields[7], []).append(fields[6])
    return found


def _unix_inodes_at(path: Path) -> list[str]:
    """Inodes of the sockets whose bound name is the file at ``path`` now: reloadkit binds
    each under a hidden name beside the path and links it over the path. (A connection still
    queued on a listener, reloadkit's readiness probe among them, shows the listener's name
    and inode 0: nobody holds it yet.)"""
    return [
        inode
        for name, inodes in _unix_inodes().items()
        if name.startswith("/") and os.path.exists(name) and os.path.samefile(name, path)
        for inode in inodes
        if inode != "0"
    ]


def _hidden_names(sock: Path) -> list[Path]:
    return sorted(sock.parent.glob(f".{sock.name}.rk*"))


def _port_is_free(port: int) -> bool:
    """Nobody listens on the port any more, and a new server can take it."""
    probe = socket.socket()
    try:
        probe.settimeout(2)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    finally:
        probe.close()
    server = socket.socket()
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        return True
    except OSError:
        return False
    finally:
        server.close()


def _unix_get(path: Path) -> str | None:
    try:
        status, body = http_get(f"unix:{path}", timeout=5)
    except OSError:
        return None
    return body if status == 200 else None


# --- running reloadkit --------------------------------------------------------------------


def _watched(tmp_path: Path) -> list[str]:
    """Reload mode, watching an empty directory (the record file must not trigger restarts)."""
    watched = tmp_path / "watched"
    watched.mkdir(exist_ok=True)
    return ["-w", str(watched)]


def _tree_args(record: Path, *flags: str, binds: Sequence[str] = ("127.0.0.1:0",),
               options: Sequence[str] = (), program: Sequence[str] | None = None) -> list[str]:
    command = [sys.executable, str(TREE)] if program is None else list(program)
    return [*[arg for spec in binds for arg in ("-b", spec)], *options, "--", *command, str(record), *flags]


def _check_exit(rk: Reloadkit, code: int | None = None, timeout: float = 15.0) -> int:
    status = rk.wait_exit(timeout)
    assert "Traceback" not in rk.output, rk.output
    if code is not None:
        assert status == code, rk.output
    return status


# =========================================================================================
# Supervisor death
# =========================================================================================


def test_sigkill_of_reloadkit_ends_every_descendant_within_a_second(tmp_path: Path) -> None:
    """SIGKILL reloadkit itself: within a second the child (its parent-death signal), its
    grandchild and great-grandchild and a double-forked daemon (ended by the guardian) are
    gone, and so is the guardian; the port is free again and the Unix socket file is gone."""
    record, sock = tmp_path / "record.txt", tmp_path / "app.sock"
    args = _tree_args(record, "--sockets", "--grandchild", "--daemon", "--serve",
                      binds=("127.0.0.1:0", f"unix:{sock}"), options=_watched(tmp_path))
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        port = rk.port
        assert procs["daemon"].ppid() == rk.proc.pid  # it double-forked away: re-parented to reloadkit
        guardian = _guardian(rk.proc.pid, {procs["child"].pid, procs["daemon"].pid})
        everything = {**procs, "guardian": guardian, "reloadkit": psutil.Process(rk.proc.pid)}
        assert sock.exists() and _unix_get(sock) == f"pid {procs['child'].pid} gen 0"
        os.kill(rk.proc.pid, signal.SIGKILL)
        took = _wait_gone(everything, KILL_DEADLINE, "after reloadkit was SIGKILLed")
        wait_for(lambda: not sock.exists() and not _hidden_names(sock), KILL_DEADLINE, "the guardian to remove the Unix socket file and its hidden name")
        assert _port_is_free(port)
        assert rk.wait_exit() == -signal.SIGKILL
    print(f"tree gone {took * 1000:.0f} ms after the SIGKILL")


def test_sigkill_of_reloadkit_ends_descendants_that_dropped_the_environment(tmp_path: Path) -> None:
    """A daemon exec'd with an empty environment carries no RELOADKIT_TREE cookie; the
    guardian still knows it from watching reloadkit's tree, and ends it."""
    record = tmp_path / "record.txt"
    with Reloadkit(_tree_args(record, "--sockets", "--scrubbed", options=_watched(tmp_path)), cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        scrubbed = procs["scrubbed"]
        # It records itself just before its exec: the environment goes with the exec.
        wait_for(lambda: "RELOADKIT_TREE" not in _environ(scrubbed.pid), 20, "the daemon to exec with an empty environment")
        assert scrubbed.ppid() == rk.proc.pid
        guardian = _guardian(rk.proc.pid, {procs["child"].pid, scrubbed.pid})
        _wait_guardian_rounds(guardian, 4)  # it has looked at the tree since the daemon exists
        os.kill(rk.proc.pid, signal.SIGKILL)
        _wait_gone({**procs, "guardian": guardian}, KILL_DEADLINE, "after reloadkit was SIGKILLed")
        rk.wait_exit()


def _wait_guardian_rounds(guardian: psutil.Process, rounds: int) -> None:
    """The guardian sleeps between looks at the tree: each look ends with a voluntary switch."""
    def switches() -> int:
        return int(guardian.num_ctx_switches().voluntary)

    target = switches() + rounds
    wait_for(lambda: switches() >= target, 10, f"the guardian to look at the tree {rounds} more times")


def test_sigkill_of_reloadkit_during_an_overlapping_restart(tmp_path: Path) -> None:
    """In --overlap mode two generations run at once; a SIGKILL of reloadkit ends both trees."""
    record = tmp_path / "record.txt"
    args = _tree_args(record, "--sockets", "--grandchild", "--daemon",
                      options=[*_watched(tmp_path), "--overlap", "--ready-after", "30"])
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        first = _tree(record, 0)
        rk.signal(signal.SIGHUP)
        second = _tree(record, 1)
        _assert_alive(first, "generation 0 (generation 1 is not ready yet)")
        os.kill(rk.proc.pid, signal.SIGKILL)
        _wait_gone({**{f"{r}/0": p for r, p in first.items()}, **{f"{r}/1": p for r, p in second.items()}},
                   KILL_DEADLINE, "after reloadkit was SIGKILLed")
        rk.wait_exit()


# =========================================================================================
# Daemonizing grandchildren and every exit path
# =========================================================================================


@contextlib.contextmanager
def _running_tree(tmp_path: Path, *flags: str, options: Sequence[str] | None = None,
                  command: Sequence[str] | None = None) -> Iterator[tuple[Reloadkit, dict[str, psutil.Process], Path]]:
    """reloadkit over a child with a grandchild, a great-grandchild and a double-forked
    daemon, on a TCP and a Unix socket; yields it once generation 0 has recorded its tree."""
    record, sock = tmp_path / "record.txt", tmp_path / "app.sock"
    args = _tree_args(record, "--sockets", "--grandchild", "--daemon", *flags,
                      binds=("127.0.0.1:0", f"unix:{sock}"),
                      options=_watched(tmp_path) if options is None else options, program=command)
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        assert procs["daemon"].ppid() == rk.proc.pid, "the daemon should have re-parented to reloadkit"
        assert sock.exists()
        try:
            yield rk, procs, sock
        finally:
            _kill(procs)


def test_double_forked_daemon_is_stopped_on_restart_and_on_exit(tmp_path: Path) -> None:
    """A daemon that double-forked and called setsid re-parents to reloadkit (a child
    subreaper); a restart (a file change: SIGHUP's is test_exit_path_sighup_restart) ends it
    with its generation and the grandchildren, the exit ends the next one."""
    with _running_tree(tmp_path, "--serve") as (rk, first, sock):
        assert first["daemon"].pid not in {p.pid for p in psutil.Process(first["child"].pid).children(recursive=True)}
        assert os.getsid(first["daemon"].pid) != os.getsid(first["child"].pid)
        write_file(tmp_path / "watched" / "app.py", "X = 1\n")
        rk.wait_for_output(r"restarting \(watched/app\.py changed\)")
        second = _tree(tmp_path / "record.txt", 1)
        _wait_gone(first, 10, "after the restart on a change")
        _assert_alive(second, "generation 1")
        assert _unix_get(sock) == f"pid {second['child'].pid} gen 1"
        rk.signal(signal.SIGINT)
        _check_exit(rk)
        _wait_gone(second, 5, "after reloadkit exited")


def test_exit_path_sigint(tmp_path: Path) -> None:
    with _running_tree(tmp_path) as (rk, procs, sock):
        rk.signal(signal.SIGINT)
        _check_exit(rk, 128 + signal.SIGINT)  # the forwarded SIGINT ended the child
        _wait_gone(procs, 5, "after SIGINT")
        assert not sock.exists() and not _hidden_names(sock)


@pytest.mark.parametrize("first", ["SIGINT", "SIGTERM"])
def test_exit_path_second_sigint(tmp_path: Path, first: str) -> None:
    """A child that ignores SIGINT and SIGTERM: a SIGINT after the first stop signal (SIGINT
    or SIGTERM) kills everything at once, long before the stop timeout."""
    options = [*_watched(tmp_path), "-v", "--stop-timeout", "60"]
    with _running_tree(tmp_path, "--ignore-stop", options=options) as (rk, procs, sock):
        started = time.monotonic()
        rk.signal(signal.Signals[first])
        rk.wait_for_output(rf"stopping pid \d+ with {first}")
        _assert_alive(procs, "a tree that ignores SIGINT")
        rk.signal(signal.SIGINT)
        _check_exit(rk, 128 + signal.SIGKILL)
        assert time.monotonic() - started < 30
        assert "second signal: killing everything now" in rk.output
        _wait_gone(procs, 5, "after the second SIGINT")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_sigterm(tmp_path: Path) -> None:
    with _running_tree(tmp_path) as (rk, procs, sock):
        rk.signal(signal.SIGTERM)
        _check_exit(rk, 128 + signal.SIGTERM)
        _wait_gone(procs, 5, "after SIGTERM")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_stop_timeout_kills_the_tree(tmp_path: Path) -> None:
    """SIGTERM to a child that ignores it: after --stop-timeout the whole tree is SIGKILLed."""
    options = [*_watched(tmp_path), "--stop-timeout", "0.5"]
    with _running_tree(tmp_path, "--ignore-stop", options=options) as (rk, procs, sock):
        rk.signal(signal.SIGTERM)
        _check_exit(rk, 128 + signal.SIGKILL)
        assert "did not stop within 0.5 s" in rk.output
        _wait_gone(procs, 5, "after the stop timeout")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_sighup_restart(tmp_path: Path) -> None:
    """SIGHUP replaces the child: the old generation's whole tree is gone, the path serves
    the new generation from a socket of its own, and the old socket's hidden name is gone."""
    with _running_tree(tmp_path, "--serve") as (rk, first, sock):
        old_names = _hidden_names(sock)
        assert len(old_names) == 1, old_names
        rk.signal(signal.SIGHUP)
        rk.wait_for_output(r"restarting \(SIGHUP\): started pid \d+ \(generation 1\)")
        second = _tree(tmp_path / "record.txt", 1)
        _wait_gone(first, 10, "after the SIGHUP restart")
        wait_for(lambda: _unix_get(sock) == f"pid {second['child'].pid} gen 1", 10, "generation 1 on the Unix socket")
        wait_for(lambda: len(_hidden_names(sock)) == 1 and _hidden_names(sock) != old_names, 10,
                 "only the new socket's hidden name beside the path")
        assert os.path.samefile(_hidden_names(sock)[0], sock)
        rk.signal(signal.SIGTERM)
        _check_exit(rk)
        _wait_gone(second, 5, "after SIGTERM")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_child_crash_while_reloading(tmp_path: Path) -> None:
    """The child crashes (status 1): its tree goes with it while reloadkit waits for a
    change; the socket file stays until reloadkit exits."""
    with _running_tree(tmp_path, "--exit=1") as (rk, procs, sock):
        _go(tmp_path / "record.txt")
        rk.wait_for_output(r"exited with status 1; waiting for a change")
        _wait_gone(procs, 5, "after the child crashed")
        assert rk.proc is not None and rk.proc.poll() is None
        assert sock.exists() and stat.S_ISSOCK(sock.stat().st_mode)
        rk.signal(signal.SIGTERM)
        _check_exit(rk)
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_child_crash_without_reload(tmp_path: Path) -> None:
    """--no-reload: reloadkit exits with the crashed child's status, leaving nothing."""
    with _running_tree(tmp_path, "--exit=1", options=["--no-reload"]) as (rk, procs, sock):
        _go(tmp_path / "record.txt")
        _check_exit(rk, 1)
        _wait_gone(procs, 5, "after the child crashed")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_child_asks_for_a_restart_with_status_3(tmp_path: Path) -> None:
    """A child that served, then exits 3 (werkzeug's "restart me"): the next generation starts."""
    with _running_tree(tmp_path, "--serve", "--exit=3@0") as (rk, first, sock):
        rk.wait_for_output(r"ready in \d+ ms")  # it served (took the readiness probe) before it asked
        _go(tmp_path / "record.txt")
        rk.wait_for_output(rf"restarting \(pid {first['child'].pid} exited with status 3\)")
        assert "right after starting" not in rk.output  # it served: no back-off
        second = _tree(tmp_path / "record.txt", 1)
        _wait_gone(first, 5, "after the child exited with status 3")
        _assert_alive(second, "generation 1")
        rk.signal(signal.SIGTERM)
        _check_exit(rk)
        _wait_gone(second, 5, "after SIGTERM")
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_restart_that_cannot_start(tmp_path: Path) -> None:
    """The command became unrunnable: the restart fails, the old tree is gone all the same,
    and reloadkit keeps waiting for a fix (reload mode)."""
    script = tmp_path / "serve.sh"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TREE}" "$@"\n')
    script.chmod(0o755)
    with _running_tree(tmp_path, command=[str(script)]) as (rk, procs, sock):
        script.unlink()
        rk.signal(signal.SIGHUP)
        rk.wait_for_output(r"command not found: .*serve\.sh; waiting for a change")
        _wait_gone(procs, 5, "after the failed restart")
        rk.signal(signal.SIGTERM)
        _check_exit(rk)
        assert not sock.exists() and not _hidden_names(sock)


def test_exit_path_restart_that_cannot_start_without_reload(tmp_path: Path) -> None:
    """--no-reload has no watcher, so there is no change to wait for: a restart that cannot
    start is bad input found after the first start; reloadkit says so in one line, exits
    with status 2, and leaves nothing (the socket file included)."""
    script = tmp_path / "serve.sh"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TREE}" "$@"\n')
    script.chmod(0o755)
    with _running_tree(tmp_path, options=["--no-reload"], command=[str(script)]) as (rk, procs, sock):
        guardian = _guardian(rk.proc.pid, {procs["child"].pid, procs["daemon"].pid})
        script.unlink()
        rk.signal(signal.SIGHUP)
        _check_exit(rk, 2)
        assert re.search(r"^reloadkit: error: .*command not found: .*serve\.sh$", rk.output, re.MULTILINE), rk.output
        _wait_gone({**procs, "guardian": guardian}, 5, "after the failed restart")
        assert not sock.exists() and not _hidden_names(sock)


# =========================================================================================
# The terminal
# =========================================================================================


class PtyReloadkit:
    """reloadkit under a pseudo-terminal: pexpect makes it a session leader with the pty as
    its controlling terminal (and the foreground process group), as a shell would.

    Its tree is tracked like the harness tracks one; everything is killed by pid at the end.
    """

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        environment = reloadkit_env({"TERM": "dumb", **(env or {})})
        environment.pop("PYTHONBREAKPOINT", None)
        self.log = io.StringIO()
        self.spawn = pexpect.spawn(sys.executable, ["-m", "reloadkit", "run", *args], cwd=str(cwd),
                                   env=environment, encoding="utf-8", codec_errors="replace",
                                   timeout=20, dimensions=(24, 200))
        self.spawn.logfile_read = self.log
        self.pid = self.spawn.pid
        self.initial = termios.tcgetattr(self.spawn.child_fd)  # before reloadkit touched anything
        self._seen: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._remember(self.pid)
        threading.Thread(target=self._track, daemon=True).start()

    def __enter__(self) -> PtyReloadkit:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if self.spawn.isalive():
                os.kill(self.pid, signal.SIGTERM)
                with contextlib.suppress(pexpect.ExceptionPexpect):
                    self.spawn.expect(pexpect.EOF, timeout=10)
        finally:
            self._stop.set()
            for proc in list(self._seen.values()):
                with contextlib.suppress(psutil.Error):
                    if proc.is_running():
                        proc.kill()
            self.spawn.close(force=True)
            if exc_type is not None:
                sys.stderr.write(f"\n----- reloadkit under a pty -----\n{self.output}\n-----\n")

    @property
    def output(self) -> str:
        return self.log.getvalue()

    def _remember(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            self._seen.setdefault(pid, psutil.Process(pid))

    def _track(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.pid).children(recursive=True):
                    self._remember(child.pid)

    def processes(self) -> dict[str, psutil.Process]:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                self._remember(child.pid)
        return {f"pid {pid}": proc for pid, proc in self._seen.items()}

    def child_pid(self, generation: int, cwd: Path) -> int:
        path = cwd / f"term-{generation}.pid"
        wait_for(path.exists, 20, f"generation {generation} to write {path.name}")
        return int(path.read_text())

    def lflags(self) -> tuple[bool, bool]:
        """ECHO and ICANON of the terminal, read through the master side (Linux gives the
        slave's settings there, which is what pexpect's getecho() relies on)."""
        lflag = termios.tcgetattr(self.spawn.child_fd)[3]
        return bool(lflag & termios.ECHO), bool(lflag & termios.ICANON)

    def sane(self) -> bool:
        """The terminal is as it was before reloadkit started (echo and line mode on)."""
        return termios.tcgetattr(self.spawn.child_fd)[3] == self.initial[3] and self.lflags() == (True, True)

    def expect(self, text: str, timeout: float = 20) -> None:
        self.spawn.expect_exact(text, timeout=timeout)

    def wait_exit(self, timeout: float = 15) -> int:
        self.spawn.expect(pexpect.EOF, timeout=timeout)
        wait_for(lambda: not self.spawn.isalive(), timeout, "reloadkit under the pty to be reaped")
        if self.spawn.exitstatus is not None:
            return int(self.spawn.exitstatus)
        return 128 + int(self.spawn.signalstatus or 0)


def _term_args(*modes: str, options: Sequence[str] = ()) -> list[str]:
    return [*options, "--", sys.executable, str(TERM), *modes]


def test_terminal_input_reaches_the_child_and_ctrl_c_ends_everything(tmp_path: Path) -> None:
    with PtyReloadkit(_term_args("input", options=_watched(tmp_path)), tmp_path) as rk:
        rk.expect("name? ")
        child = rk.child_pid(0, tmp_path)
        assert os.getpgid(child) == os.getpgid(rk.pid) == os.tcgetpgrp(rk.spawn.child_fd)  # in the foreground
        rk.spawn.sendline("Ada")
        rk.expect("Ada\r\n")  # the terminal echoed what was typed
        rk.expect("hello Ada!")
        rk.expect("name? ")
        rk.spawn.sendline("Grace")
        rk.expect("hello Grace!")
        procs = rk.processes()
        rk.expect("name? ")
        rk.spawn.sendcontrol("c")
        assert rk.wait_exit() == 128 + signal.SIGINT
        _wait_gone(procs, 5, "after Ctrl+C")
        assert rk.sane()
        assert "Traceback" not in rk.output


def test_pdb_works_with_echo_and_line_editing(tmp_path: Path) -> None:
    """breakpoint() in the child: commands are echoed and edited (readline), `p 1+1` prints
    2, `c` continues. pdb then catches Ctrl+C itself (it breaks back into the debugger), so
    reloadkit sends the stop signal a second later (not after the 60 s --stop-timeout):
    one Ctrl+C still ends everything, promptly."""
    with PtyReloadkit(_term_args("pdb", options=[*_watched(tmp_path), "--stop-timeout", "60"]), tmp_path) as rk:
        rk.expect("(Pdb) ")
        rk.spawn.send("p 1+1\r")
        rk.expect("p 1+1")  # echoed
        rk.spawn.expect(r"\r\n2\r\n")
        rk.expect("(Pdb) ")
        rk.spawn.send("2+40\x01p \r")  # Ctrl+A: to the start of the line, then "p "
        rk.spawn.expect(r"\r\n42\r\n")
        rk.expect("(Pdb) ")
        rk.spawn.send("p x\r")
        rk.spawn.expect(r"\r\n40\r\n")
        rk.expect("(Pdb) ")
        rk.spawn.send("c\r")
        rk.expect("after pdb x=40")
        wait_for(lambda: rk.lflags() == (True, True), 10, "pdb to give the terminal back")
        procs = rk.processes()
        started = time.monotonic()
        rk.spawn.sendcontrol("c")
        rk.wait_exit()
        assert time.monotonic() - started < 10
        _wait_gone(procs, 5, "after Ctrl+C")
        assert rk.sane(), "the terminal should be restored"


def test_terminal_is_restored_when_the_child_dies_in_pdb(tmp_path: Path) -> None:
    """SIGKILL the child while pdb's readline has echo and line mode off: reloadkit puts the
    terminal back, and the next generation reads the terminal normally."""
    with PtyReloadkit(_term_args("pdb", "input", options=_watched(tmp_path)), tmp_path) as rk:
        rk.expect("(Pdb) ")
        child = rk.child_pid(0, tmp_path)
        wait_for(lambda: rk.lflags() == (False, False), 10, "readline to switch echo and line mode off")
        os.kill(child, signal.SIGKILL)
        rk.expect("waiting for a change")
        wait_for(rk.sane, 5, "reloadkit to restore the terminal")
        os.kill(rk.pid, signal.SIGHUP)
        rk.expect("name? ")
        rk.spawn.sendline("Linus")
        rk.expect("Linus\r\n")
        rk.expect("hello Linus!")
        procs = rk.processes()
        rk.expect("name? ")
        rk.spawn.sendcontrol("c")
        rk.wait_exit()
        _wait_gone(procs, 5, "after Ctrl+C")
        assert rk.sane()


def test_terminal_is_restored_when_reloadkit_exits_with_the_child(tmp_path: Path) -> None:
    """--no-reload: the child is killed in pdb, reloadkit exits with its status, and the
    terminal it leaves behind is sane."""
    with PtyReloadkit(_term_args("pdb", options=["--no-reload"]), tmp_path) as rk:
        rk.expect("(Pdb) ")
        child = rk.child_pid(0, tmp_path)
        wait_for(lambda: rk.lflags() == (False, False), 10, "readline to switch echo and line mode off")
        procs = rk.processes()
        os.kill(child, signal.SIGKILL)
        assert rk.wait_exit() == 128 + signal.SIGKILL
        _wait_gone(procs, 5, "after the child was killed")
        assert rk.sane()


def test_one_ctrl_c_ends_everything_when_the_child_exits_0_on_sigint(tmp_path: Path) -> None:
    """The child handles SIGINT and exits 0: reloadkit exits too (it does not take that
    for a normal exit and wait for a change), at once, with nothing left."""
    record = tmp_path / "record.txt"
    args = _tree_args(record, "--int-exit0", "--grandchild", "--daemon", binds=(),
                      options=[*_watched(tmp_path), "--stop-timeout", "60"])
    with PtyReloadkit(args, tmp_path) as rk:
        procs = _tree(record, 0)
        procs.update(rk.processes())
        started = time.monotonic()
        rk.spawn.sendcontrol("c")
        rk.wait_exit()
        assert time.monotonic() - started < 10
        _wait_gone(procs, 5, "after Ctrl+C")
        assert rk.sane()


def test_second_ctrl_c_kills_a_child_that_ignores_it(tmp_path: Path) -> None:
    with PtyReloadkit(_term_args("deaf", options=[*_watched(tmp_path), "-v", "--stop-timeout", "60"]), tmp_path) as rk:
        rk.expect("waiting")
        procs = rk.processes()
        started = time.monotonic()
        rk.spawn.sendcontrol("c")
        # Wait until reloadkit took the first one: a second ^C typed while the tty is still
        # flushing after the first is dropped by the kernel, reloadkit or not.
        rk.expect("stopping pid")
        _assert_alive(procs, "a child that ignores Ctrl+C")
        rk.spawn.sendcontrol("c")
        rk.expect("second signal: killing everything now")
        rk.wait_exit()
        assert time.monotonic() - started < 30
        _wait_gone(procs, 5, "after the second Ctrl+C")
        assert rk.sane()


def test_sigkill_of_reloadkit_under_a_terminal_ends_the_debugged_child(tmp_path: Path) -> None:
    with PtyReloadkit(_term_args("pdb", options=_watched(tmp_path)), tmp_path) as rk:
        rk.expect("(Pdb) ")
        procs = rk.processes()
        assert len(procs) >= 3  # reloadkit, its guardian, the child
        os.kill(rk.pid, signal.SIGKILL)
        _wait_gone(procs, KILL_DEADLINE, "after reloadkit was SIGKILLed")


def test_without_a_terminal_the_child_gets_its_own_process_group(tmp_path: Path) -> None:
    """Under pipes (CI), the child leads its own process group and SIGINT is forwarded."""
    record = tmp_path / "record.txt"
    with Reloadkit(_tree_args(record, "--sockets", options=_watched(tmp_path)), cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        child = procs["child"].pid
        assert os.getpgid(child) == child != os.getpgid(rk.proc.pid)
        rk.signal(signal.SIGINT)
        _check_exit(rk, 128 + signal.SIGINT)
        _wait_gone(procs, 5, "after SIGINT")


# =========================================================================================
# Descriptors and the environment
# =========================================================================================


def _socket_inode(target: str) -> str:
    match = re.fullmatch(r"socket:\[(\d+)\]", target)
    assert match, f"{target!r} is not a socket"
    return match.group(1)


def _check_child_fds(child: int, rk_pid: int, port: int, sock: Path, *, overlap: bool) -> None:
    fds = _fds(child)
    assert sorted(fds) == [0, 1, 2, 3, 4], fds
    assert _socket_inode(fds[3]) == _tcp_listener_inode(port)
    assert [_socket_inode(fds[4])] == _unix_inodes_at(sock)
    notify = next(inodes for path, inodes in _unix_inodes().items() if path.startswith(f"@reloadkit-{rk_pid}-"))
    assert not set(notify) & {_socket_inode(target) for target in fds.values() if target.startswith("socket:")}
    ours = _fds(rk_pid)
    assert fds[0] == ours[0] and fds[1] == ours[1]
    # stderr is a pipe through reloadkit in every mode (reloadkit's own stderr is not a
    # terminal here), which shows a failed start's last lines on the error page and in overlap
    assert fds[2].startswith("pipe:") and fds[2] != ours[2]
    assert fds[2] in ours.values()


@pytest.mark.parametrize("overlap", [False, True], ids=["plain", "overlap"])
def test_child_holds_only_stdio_and_its_sockets(tmp_path: Path, overlap: bool) -> None:
    """/proc/<child>/fd: 0, 1, 2 and the sockets, nothing else: not the notify socket, not
    the watcher's inotify descriptor, not the previous generation's stderr pipe, not an
    inheritable descriptor that reloadkit itself inherited from whoever started it."""
    record, sock = tmp_path / "record.txt", tmp_path / "app.sock"
    options = [*_watched(tmp_path), *(["--overlap", "--ready-after", "0.1"] if overlap else [])]
    args = _tree_args(record, binds=("127.0.0.1:0", f"unix:{sock}"), options=options)
    stray_read, stray_write = os.pipe()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(os.close, stray_read)
        cleanup.callback(os.close, stray_write)
        rk = cleanup.enter_context(Reloadkit(args, cwd=tmp_path, pass_fds=[stray_read]))
        rk.wait_listening()
        first_tree = _tree(record, 0)
        first = first_tree["child"].pid
        ours = _fds(rk.proc.pid)
        assert any(target == "anon_inode:inotify" for target in ours.values())
        assert ours[stray_read] == os.readlink(f"/proc/self/fd/{stray_read}") and not _cloexec(rk.proc.pid, stray_read)
        _check_child_fds(first, rk.proc.pid, rk.port, sock, overlap=overlap)
        rk.signal(signal.SIGHUP)
        second = _tree(record, 1)["child"].pid
        _wait_gone(first_tree, 10, "the first generation after SIGHUP")  # the hand-over is complete
        _check_child_fds(second, rk.proc.pid, rk.port, sock, overlap=overlap)
        guardian = _guardian(rk.proc.pid, {first, second})
        assert not [t for t in _fds(guardian.pid).values() if t.startswith("socket:")]  # it never holds the port


def test_grandchildren_after_sockets_hold_no_socket_and_no_contract_variables(tmp_path: Path) -> None:
    """After reloadkit.sockets() the sockets are close-on-exec and LISTEN_*/WERKZEUG_* are
    gone, so a subprocess (even one started with close_fds=False, like os.system) holds no
    socket and adopts nothing. A grandchild started before sockets() is the control."""
    record = tmp_path / "record.txt"
    with Reloadkit(_tree_args(record, "--early", "--sockets", "--grandchild", binds=("127.0.0.1:0", "127.0.0.1:0"),
                              options=["--no-reload"]), cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        child = procs["child"].pid
        early = _fds(procs["early"].pid)  # the control: inherited everything
        assert early[3].startswith("socket:") and early[4].startswith("socket:")
        assert _environ(procs["early"].pid)["LISTEN_FDS"] == "2"
        for role in ("grandchild", "great-grandchild"):
            pid = procs[role].pid
            assert not [t for t in _fds(pid).values() if t.startswith("socket:")], (role, _fds(pid))
            env = _environ(pid)
            assert not [key for key in env if key.startswith(CONTRACT_PREFIXES)], (role, _ours(env))
            assert env["RELOADKIT_PID"] == str(child) != str(pid)  # reloadkit.is_child() is False there
            assert env["RELOADKIT_TREE"] == _environ(child)["RELOADKIT_TREE"]


def test_child_sees_exactly_the_documented_variables(tmp_path: Path) -> None:
    """The variables of reloadkit's own environment never reach the child stale: the child
    sees exactly the documented set, with fresh values, generation after generation."""
    record = tmp_path / "record.txt"
    stale = {"LISTEN_FDS": "9", "LISTEN_PID": "1", "LISTEN_FDNAMES": "stale", "LISTEN_FDS_FIRST_FD": "7",
             "WERKZEUG_SERVER_FD": "9", "WERKZEUG_RUN_MAIN": "false", "NOTIFY_SOCKET": "/stale",
             "RELOADKIT_PID": "1", "RELOADKIT_GENERATION": "99", "RELOADKIT_TREE": "stale",
             "RELOADKIT_CHANGED": "/stale", "RELOADKIT_IMPORTS": "1", "RELOADKIT_BINDS_ASK": "@stale",
             "RELOADKIT_BINDS_HELD": "9 1 2 80 10.0.0.1", "RELOADKIT_BINDS_LEARN": "1", "RELOADKIT_ONE_RELOADER": "0"}
    args = _tree_args(record, binds=("web=127.0.0.1:0", "unix:" + str(tmp_path / "a.sock")), options=_watched(tmp_path))
    with Reloadkit(args, cwd=tmp_path, env=stale) as rk:
        rk.wait_listening()
        cookies = set()
        for generation in (0, 1):
            if generation:
                rk.signal(signal.SIGHUP)
            child = _tree(record, generation)["child"].pid
            env = _ours(_environ(child))
            cookie = env.pop("RELOADKIT_TREE")
            assert re.fullmatch(r"[0-9a-f]{16}", cookie)
            cookies.add(cookie)
            notify = env.pop("NOTIFY_SOCKET")
            assert notify.startswith(f"@reloadkit-{rk.proc.pid}-")
            assert env.pop("RELOADKIT_BINDS_ASK").startswith(f"@reloadkit-adopt-{rk.proc.pid}-")
            held = env.pop("RELOADKIT_BINDS_HELD").split("\n")  # bind adoption: fd, inode, family, port, address
            assert re.fullmatch(r"3 \d+ 2 \d+ 127\.0\.0\.1", held[0]) and held[1].endswith(f" 1 0 {tmp_path / 'a.sock'}")
            assert env == {
                "LISTEN_FDS": "2", "LISTEN_PID": str(child), "LISTEN_FDNAMES": "web:unix", "LISTEN_FDS_FIRST_FD": "3",
                "WERKZEUG_SERVER_FD": "3", "WERKZEUG_RUN_MAIN": "true",
                "RELOADKIT_PID": str(child), "RELOADKIT_GENERATION": str(generation),
                "RELOADKIT_WARM_REPORT": "1",  # warm is the default for a Python command
                "RELOADKIT_ONE_RELOADER": "1",  # the frameworks' own reloaders are off
            }
        assert len(cookies) == 1  # one tree cookie for the supervisor's life


def test_without_bind_the_child_sees_no_socket_variables(tmp_path: Path) -> None:
    """Stale LISTEN_* that are not for reloadkit (LISTEN_PID is another process) are neither
    adopted nor passed on."""
    record = tmp_path / "record.txt"
    stale = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "x", "WERKZEUG_SERVER_FD": "3",
             "WERKZEUG_RUN_MAIN": "true"}
    with Reloadkit(_tree_args(record, binds=(), options=["--no-reload"]), cwd=tmp_path, env=stale) as rk:
        child = _tree(record, 0)["child"].pid
        env = _ours(_environ(child))
        # bind adoption: where to ask, and generation 0 learns what it binds (nothing is held)
        assert sorted(env) == ["NOTIFY_SOCKET", "RELOADKIT_BINDS_ASK", "RELOADKIT_BINDS_LEARN", "RELOADKIT_GENERATION",
                               "RELOADKIT_PID", "RELOADKIT_TREE"]
        assert sorted(_fds(child)) == [0, 1, 2]
        assert "listening on" not in rk.output


# =========================================================================================
# Unix sockets
# =========================================================================================


@pytest.mark.parametrize("mode", [0o600, 0o660, 0o666], ids=oct)
def test_unix_socket_gets_the_requested_mode_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    record, sock = tmp_path / "record.txt", tmp_path / "app.sock"
    inner = ["-m", "reloadkit", "run", *_tree_args(record, binds=(f"unix:{sock},mode={mode:o}",), options=["--no-reload"])]
    argv = ["sh", "-c", 'umask 077; exec "$0" "$@"', sys.executable, *inner]
    with Reloadkit([], argv=argv, cwd=tmp_path) as rk:
        rk.wait_listening()
        _tree(record, 0)
        info = sock.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == mode, f"{stat.S_IMODE(info.st_mode):o}"
        rk.signal(signal.SIGTERM)
        _check_exit(rk)
    assert not sock.exists() and not _hidden_names(sock)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
@pytest.mark.parametrize("replacement", ["file", "socket"])
def test_a_path_the_child_took_over_is_never_removed(tmp_path: Path, replacement: str, how: str) -> None:
    """A child that replaced the socket path with its own file, or its own Unix socket,
    keeps it: reloadkit (or its guardian, after a SIGKILL) removes only the socket file it
    created itself (same inode), never what is at the path now."""
    record, sock = tmp_path / "record.txt", tmp_path / "app.sock"
    flag = f"--replace={sock}" if replacement == "file" else f"--replace-socket={sock}"
    # --no-adopt: the child's bind() to the held path would otherwise take the held socket
    args = _tree_args(record, "--sockets", flag, binds=(f"unix:{sock}",), options=[*_watched(tmp_path), "--no-adopt"])
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        procs = _tree(record, 0)
        theirs = sock.lstat()
        assert stat.S_ISSOCK(theirs.st_mode) == (replacement == "socket")
        if how == "sigterm":
            rk.signal(signal.SIGTERM)
            _check_exit(rk)
        else:
            guardian = _guardian(rk.proc.pid, {procs["child"].pid})
            os.kill(rk.proc.pid, signal.SIGKILL)
            _wait_gone({**procs, "guardian": guardian}, KILL_DEADLINE, "after reloadkit was SIGKILLed")
            rk.wait_exit()
    assert sock.lstat().st_ino == theirs.st_ino
    if replacement == "file":
        assert sock.read_text() == "the child's own file\n"


@pytest.mark.parametrize("failure", ["second-bind", "exec-format"])
def test_unix_socket_removed_after_a_bad_input_exit(tmp_path: Path, failure: str) -> None:
    """The Unix socket was bound, then something else is bad: a later bind fails, or the
    command cannot be executed (found only by execve, after the guardian, the notify socket
    and the watcher exist). One line, status 2, no socket file, no process left."""
    sock = tmp_path / "app.sock"
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    garbage = tmp_path / "not-a-program"
    garbage.write_bytes(b"\x7fELF but not really\n")
    garbage.chmod(0o755)
    try:
        binds = ["-b", f"unix:{sock},mode=600"]
        if failure == "second-bind":
            binds += ["-b", f"127.0.0.1:{taken.getsockname()[1]}"]
        argv = [sys.executable, "-m", "reloadkit", "run", *binds, *_watched(tmp_path), "--", str(garbage)]
        before = _marked_processes(tmp_path)
        result = subprocess.run(argv, cwd=tmp_path, env=reloadkit_env(), capture_output=True, text=True, timeout=30)
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("reloadkit: error: ")]
    assert len(errors) == 1, result.stderr
    assert ("address already in use" if failure == "second-bind" else "Exec format error") in errors[0]
    assert not sock.exists() and not _hidden_names(sock)
    wait_for(lambda: _marked_processes(tmp_path) <= before, 5, "no process of that reloadkit (its guardian) to be left")


def _marked_processes(tmp_path: Path) -> set[int]:
    """Live processes whose command line mentions tmp_path (reloadkit and its forked guardian)."""
    found = set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(str(tmp_path) in part for part in proc.info["cmdline"] or ()):
                found.add(proc.pid)
    return found
