"""Test harness: start reloadkit for real, wait for conditions with deadlines, clean up by pid.

Every wait has a deadline and a message saying what it waited for; every process that was
ever seen in the supervisor's tree is killed at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

import reloadkit

ROOT = Path(__file__).resolve().parents[2]
#: What a child needs on its PYTHONPATH to import the reloadkit these tests import: the
#: checkout when they test the checkout (a worktree run with another checkout's virtualenv),
#: nothing when they test an installed reloadkit (tox installs the built package, and the
#: checkout must then stay out of every process, or a file missing from the wheel would pass).
SOURCE_PATH: list[str] = [str(ROOT)] if Path(reloadkit.__file__).resolve().parents[1] == ROOT else []
T = TypeVar("T")
#: The test apps (tests/integration/apps): a copy of a directory per test, or run in place.
APPS = Path(__file__).resolve().parent / "apps"
#: Serves VERSION from ./version.py on the inherited socket (flags in its docstring).
VERSIONED = APPS / "versioned.py"
#: A WSGI app behind reloadkit's middleware that shows TEXT from ./view.py.
WEBAPP = APPS / "webapp.py"
#: The real servers' apps (gunicorn, uvicorn, Django, Flask, ...).
SERVER_APPS = APPS / "servers"
#: This interpreter's scripts directory (a virtualenv's bin).
BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "a condition", interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def needs(available: object, what: str) -> None:
    """Skip a test whose prerequisite (a browser, uv) this machine lacks; under CI fail instead:
    CI installs every prerequisite, so a missing one there is a broken set-up, not a skip."""
    if available:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"{what} is missing, and CI must run this test")
    pytest.skip(f"{what} is missing")


def reloadkit_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a reloadkit under test: the reloadkit under test importable (see
    :data:`SOURCE_PATH`), no stale contract."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LISTEN_", "RELOADKIT_", "WERKZEUG_")) and key != "NOTIFY_SOCKET"}
    path = [*SOURCE_PATH, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the same bytecode caching everywhere (CI or not)
    env.update(extra or {})
    return env


class _Connection(http.client.HTTPConnection):
    """HTTP over TCP or a Unix socket (``unix:/path`` URLs)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.unix_path: str | None = None
        if url.startswith("unix:"):
            self.unix_path = url[5:]
            super().__init__("localhost", timeout=timeout)
        else:
            hostport = url.split("://", 1)[-1].split("/", 1)[0]
            super().__init__(hostport, timeout=timeout)

    def connect(self) -> None:
        if self.unix_path is None:
            super().connect()
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def http_get(url: str, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One request on a new connection: (status, body)."""
    conn = _Connection(url, timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def try_get(url: str, path: str = "/", timeout: float = 2.0) -> str | None:
    """The body, or None if the request failed in any way."""
    try:
        status, body = http_get(url, path, timeout)
    except (OSError, http.client.HTTPException):
        return None
    return body if status == 200 else None


class Reloadkit:
    """``python -m reloadkit run ARGS`` as a context manager, output captured, tree tracked."""

    def __init__(self, args: Sequence[str], cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, subcommand: Sequence[str] = ("run",),
                 argv: Sequence[str] | None = None, pass_fds: Sequence[int] = ()) -> None:
        self.argv = list(argv) if argv is not None else [sys.executable, "-m", "reloadkit", *subcommand, *args]
        self.cwd = str(cwd) if cwd is not None else None
        self.env = reloadkit_env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self._output: list[str] = []
        self._lock = threading.Lock()
        self._seen: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self.addresses: list[str] = []
        self.pass_fds = tuple(pass_fds)

    # lifecycle
    def __enter__(self) -> Reloadkit:
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     pass_fds=self.pass_fds)
        self._remember(self.proc.pid)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._track, daemon=True).start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close()
        finally:
            if exc_type is not None:
                sys.stderr.write(f"\n----- reloadkit output ({' '.join(self.argv)}) -----\n{self.output}\n-----\n")

    def close(self) -> None:
        assert self.proc is not None
        self.tree_pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._stop.set()
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every process ever seen in the tree that is still alive; reap ours."""
        for proc in list(self._seen.values()):
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    # output
    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            with self._lock:
                self._output.append(line)

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._output)

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output, re.MULTILINE))

    def wait_for_output(self, pattern: str, count: int = 1, timeout: float = 30.0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            matches = list(re.finditer(pattern, self.output, re.MULTILINE))
            if len(matches) >= count:
                return matches[count - 1]
            if self.proc is not None and self.proc.poll() is not None and len(matches) < count:
                time.sleep(0.05)  # the reader thread may still be draining the pipe
                matches = list(re.finditer(pattern, self.output, re.MULTILINE))
                if len(matches) >= count:
                    return matches[count - 1]
                pytest.fail(f"reloadkit exited ({self.proc.returncode}) before printing {pattern!r} x{count}:\n{self.output}")
            return None

        return wait_for(found, timeout, f"output {pattern!r} (occurrence {count})")

    def wait_listening(self, timeout: float = 30.0) -> list[str]:
        """Wait for every ``listening on`` line; returns the addresses in order."""
        self.wait_for_output(r"listening on (\S+)", timeout=timeout)
        self.wait_for_output(r"started pid \d+", timeout=timeout)
        self.addresses = re.findall(r"listening on (\S+)", self.output)
        return self.addresses

    @property
    def url(self) -> str:
        if not self.addresses:
            self.wait_listening()
        return next(a for a in self.addresses if a.startswith("http"))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def generations(self) -> int:
        """How many generations were started so far (a start retried once an older generation
        is gone is the same generation again)."""
        return len(set(re.findall(r"started pid \d+ \(generation (\d+)\)", self.output)))

    def child_pid(self, generation: int | None = None) -> int:
        pids = re.findall(r"started pid (\d+) \(generation (\d+)\)", self.output)
        if generation is None:
            return int(pids[-1][0])
        return next(int(pid) for pid, gen in pids if int(gen) == generation)

    # processes
    def _remember(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            self._seen.setdefault(pid, psutil.Process(pid))

    def _track(self) -> None:
        while not self._stop.wait(0.05):
            self.tree_pids()

    def tree_pids(self) -> set[int]:
        """Every pid ever seen in the supervisor's tree (this call takes a snapshot too)."""
        assert self.proc is not None
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            for child in root.children(recursive=True):
                self._remember(child.pid)
        for match in re.findall(r"started pid (\d+)", self.output):
            pid = int(match)
            if pid not in self._seen and pid != os.getpid():
                self._remember(pid)
        return set(self._seen)

    def alive_pids(self) -> set[int]:
        alive = set()
        for pid, proc in list(self._seen.items()):
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
        return alive

    def signal(self, number: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(number)

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"reloadkit did not exit within {timeout:g} s:\n{self.output}")


def assert_all_gone(pids: set[int], timeout: float = 5.0) -> None:
    """Every pid in ``pids`` is dead (or a zombie) within ``timeout``."""
    def alive() -> set[int]:
        result = set()
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    result.add(pid)
        return result

    wait_for(lambda: not alive(), timeout, f"processes {sorted(alive())} to be gone")


class LoopingClient:
    """A background client: a new connection per request, bounded in count and time."""

    def __init__(self, url: str, max_requests: int = 5000, max_seconds: float = 60.0, path: str = "/", timeout: float = 10.0) -> None:
        self.url = url
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.path = path
        self.timeout = timeout
        self.stats: dict[str, Any] = {"ok": 0, "failed": 0, "errors": [], "latencies": []}
        self.last_body: str | None = None
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopingClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            started = time.monotonic()
            try:
                status, body = http_get(self.url, self.path, self.timeout)
            except (OSError, http.client.HTTPException) as exc:
                self.stats["failed"] += 1
                self.stats["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            self.stats["latencies"].append(time.monotonic() - started)
            if status == 200:
                self.stats["ok"] += 1
                self.last_body = body
                if not self.bodies or self.bodies[-1] != body:
                    self.bodies.append(body)
            else:
                self.stats["failed"] += 1
                self.stats["errors"].append(f"HTTP {status}")

    def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        target = self.stats["ok"] + self.stats["failed"] + count
        wait_for(lambda: self.stats["ok"] + self.stats["failed"] >= target, timeout, f"{count} more client requests")


@contextlib.contextmanager
def running(args: Sequence[str], cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Iterator[Reloadkit]:
    """Start reloadkit and wait until it listens and has started its first child."""
    with Reloadkit(args, cwd=cwd, env=env) as rk:
        rk.wait_listening()
        yield rk


def write_file(path: Path, text: str) -> None:
    """Write and make sure the mtime moves, even on coarse-grained file systems."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


# --- projects and commands shared by several test files ---------------------------------------


def serves(target: Reloadkit | str, body: str, timeout: float = 20.0) -> None:
    """Wait until a new connection to ``target`` (a reloadkit's URL, or a URL) gets ``body``."""
    url = target if isinstance(target, str) else target.url
    wait_for(lambda: try_get(url) == body, timeout, f"{url} to serve {body!r}")


def versioned_project(root: Path, version: str = "v0") -> Path:
    """A directory where ``version.py`` says ``version``: the project of apps/versioned.py."""
    (root / "version.py").write_text(f"VERSION = {version!r}\n")
    return root


def versioned_args(*options: str, flags: Sequence[str] = ()) -> list[str]:
    """``reloadkit run`` arguments for apps/versioned.py on 127.0.0.1:0 (``flags`` are the app's)."""
    return ["-b", "127.0.0.1:0", *options, "--", sys.executable, str(VERSIONED), *flags]


def webapp_project(root: Path, text: str = "one") -> Path:
    """The project of apps/webapp.py: view.py's TEXT and a stylesheet."""
    (root / "static").mkdir(parents=True)
    (root / "static" / "style.css").write_text("h1 { color: rgb(255, 0, 0); }\n")
    (root / "view.py").write_text(f"TEXT = {text!r}\n")
    return root


def server_env(project: Path, **extra: str) -> dict[str, str]:
    """The environment for a real server: this interpreter's scripts first on PATH, no
    bytecode files (an edit within the same second and size must not be hidden by a stale
    .pyc), and a runtime directory beside the project (gunicorn >= 23 puts a control socket in
    $XDG_RUNTIME_DIR, else in ~/.gunicorn)."""
    env = {
        "PYTHONDONTWRITEBYTECODE": "1",
        "XDG_RUNTIME_DIR": str(project.parent / "run"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
    }
    env.update(extra)
    return env


def start_server(project: Path, binds: Sequence[str], command: Sequence[str], *options: str, **env: str) -> Reloadkit:
    """``reloadkit run -b BIND... OPTIONS -- COMMAND`` for a real server in ``project`` (see
    :func:`server_env`; ``env`` adds to it); a context manager, not started yet."""
    args = [arg for bind in binds for arg in ("-b", bind)]
    return Reloadkit([*args, *options, "--", *command], cwd=project, env=server_env(project, **env))


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a process that has not exited (a zombie has)?"""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def child_pids(pid: int) -> list[int]:
    """``pid``'s children now (none if it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def wait_children(pid: int, count: int, timeout: float = 20.0) -> set[int]:
    """The pids of ``pid``'s children, once there are at least ``count``."""
    def found() -> set[int] | None:
        try:
            kids = psutil.Process(pid).children()
        except psutil.Error:
            return None
        return {kid.pid for kid in kids} if len(kids) >= count else None

    return wait_for(found, timeout, f"{count} children of pid {pid}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server that binds its own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
