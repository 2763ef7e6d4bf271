"""One child generation: spawn it with the fd contract, stop it, and end its whole tree.

The child is forked and exec'd by hand (not ``subprocess``) because systemd's contract wants
``LISTEN_PID`` to be the exec'd command's own pid, which is only known between fork and exec,
and the sockets must land exactly at fds 3, 4, ... with nothing else inherited.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import shutil
import signal
import stat
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from reloadkit.child.protocol import FIRST_FD
from reloadkit.errors import SpawnError

__all__ = [
    "Child",
    "Guardian",
    "TreeTracker",
    "become_subreaper",
    "descendants",
    "direct_children",
    "kill_processes",
    "resolve_command",
    "spawn",
]

# os.fork() in a process with threads warns on 3.12+; the child only calls async-signal-safe
# system calls (dup2, prctl, execve) before exec, which is what that warning is about.
warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks.*", category=DeprecationWarning)

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        # The interpreter's own symbols include libc's; ctypes.util.find_library would
        # run /sbin/ldconfig, a subprocess on every start.
        _libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - exotic libc
        _libc = None


def _prctl(option: int, value: int) -> bool:
    if _libc is None:
        return False
    return bool(_libc.prctl(option, value, 0, 0, 0) == 0)


def become_subreaper() -> bool:
    """Make orphaned descendants (double-forked daemons) re-parent to us, so we can end them."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def resolve_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The executable's path, or a one-line :class:`SpawnError` before anything is forked."""
    if not argv or not argv[0]:
        raise SpawnError(errno.ENOENT, "no command given (put it after --)")
    program = argv[0]
    if os.sep in program:
        if not os.path.exists(program):
            raise SpawnError(errno.ENOENT, f"command not found: {program}")
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise SpawnError(errno.EACCES, f"command is not executable: {program}")
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise SpawnError(errno.ENOENT, f"command not found: {program}")
    return found


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):  # pragma: no cover
        return 65536


def _exec_child(
    path: str,
    argv: Sequence[str],
    env: dict[bytes, bytes],
    fds: Sequence[int],
    keep: Sequence[int],
    errpipe: int,
    parent: int,
    own_group: bool,
    stderr_fd: int | None,
    listen_pid: bool = True,
) -> None:
    """Runs in the forked child: only system calls, then exec. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) and os.getppid() != parent:
            os._exit(1)  # the supervisor died between fork and prctl
        if own_group:
            os.setpgid(0, 0)
        if stderr_fd is not None:
            os.dup2(stderr_fd, 2)
        count = len(fds)
        # Move the sources out of the target range first so that no dup2 clobbers another.
        high = max([FIRST_FD + count, errpipe + 1, *[fd + 1 for fd in fds]])
        moved = [_dup_above(fd, high) for fd in fds]
        errpipe = _dup_above(errpipe, max([high, *[m + 1 for m in moved]]), cloexec=True)
        for index, source in enumerate(moved):
            os.dup2(source, FIRST_FD + index, inheritable=True)
        keep_set = sorted({errpipe, *keep})
        start = FIRST_FD + count
        for fd in keep_set:
            if fd >= start:
                os.closerange(start, fd)
                start = fd + 1
        os.closerange(start, _max_fd())
        pid = str(os.getpid()).encode()
        if fds and listen_pid:
            env[b"LISTEN_PID"] = pid
        env[b"RELOADKIT_PID"] = pid
        os.execve(path, list(argv), env)
    except BaseException as exc:  # noqa: BLE001 - report anything, then leave
        code = getattr(exc, "errno", None) or errno.EINVAL
        try:
            os.write(errpipe, f"{code}:{exc}".encode(errors="replace"))
        finally:
            os._exit(127)


def _dup_above(fd: int, minimum: int, cloexec: bool = False) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC if cloexec else fcntl.F_DUPFD, minimum)


@dataclass
class Child:
    """A running (or finished) child generation and every process seen in its tree."""

    pid: int
    generation: int
    argv: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    returncode: int | None = None
    ready_at: float | None = None
    stop_sent_at: float | None = None
    extend: float = 0.0
    known: dict[int, psutil.Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.known[self.pid] = psutil.Process(self.pid)
        except psutil.Error:
            pass

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def snapshot(self) -> None:
        """Remember every current descendant, so it can be ended even after re-parenting."""
        if self.pid not in self.known or not self.alive:
            return
        for pid in descendants([self.pid]):
            if pid not in self.known:
                with contextlib.suppress(psutil.Error):
                    self.known[pid] = psutil.Process(pid)

    def tree_pids(self) -> set[int]:
        self.snapshot()
        return set(self.known)

    def signal(self, number: int) -> None:
        if self.alive:
            try:
                os.kill(self.pid, number)
            except ProcessLookupError:
                pass

    def kill_tree(self) -> int:
        """SIGKILL the child and every process ever seen in its tree; returns how many."""
        self.snapshot()
        victims = [proc for pid, proc in self.known.items() if pid != self.pid or self.alive]
        return kill_processes(victims)


def kill_processes(processes: Iterable[psutil.Process]) -> int:
    """SIGKILL each process that is still the one we saw (psutil checks its start time)."""
    killed = 0
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                killed += 1
        except psutil.Error:
            pass
    return killed


def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    socket_fds: Sequence[int] = (),
    *,
    generation: int = 0,
    keep_fds: Sequence[int] = (),
    own_group: bool = False,
    stderr_fd: int | None = None,
    listen_pid: bool = True,
) -> Child:
    """Fork and exec ``argv`` with ``socket_fds`` at 3.. and ``LISTEN_PID`` set to its pid
    (left out with ``listen_pid=False``: ``--through-wrapper``, see wrappers.py).

    ``stderr_fd`` replaces the child's stderr; ``keep_fds`` survive into the child beside
    the sockets; every other descriptor above the sockets is closed.
    """
    path = resolve_command(argv, env)
    env_bytes = {os.fsencode(key): os.fsencode(value) for key, value in env.items()}
    read_end, write_end = os.pipe()
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs or exits
        os.close(read_end)
        _exec_child(
            path, argv, env_bytes, list(socket_fds), keep_fds, write_end, parent, own_group, stderr_fd, listen_pid
        )
    os.close(write_end)
    try:
        report = _read_until_exec(read_end, pid)
    finally:
        os.close(read_end)
    if report:
        os.waitpid(pid, 0)
        code_text, _, message = report.decode(errors="replace").partition(":")
        code = int(code_text) if code_text.isdigit() else errno.EINVAL
        raise SpawnError(code, f"cannot start {argv[0]}: {os.strerror(code)}" if code else message)
    return Child(pid=pid, generation=generation, argv=tuple(argv))


def _read_until_exec(read_end: int, pid: int, timeout: float = 10.0) -> bytes:
    """The child's error report, or b"" once exec closed the pipe (close-on-exec).

    A child stuck before exec (it should never be) is killed rather than hanging the loop.
    """
    report = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
            os.kill(pid, signal.SIGKILL)
            return f"{errno.ETIMEDOUT}:the child did not exec within {timeout:g} s".encode()
        chunk = os.read(read_end, 4096)
        if not chunk:
            return report
        report += chunk


class Guardian:
    """A small process that outlives a SIGKILLed supervisor to end what it left behind.

    A parent-death signal only reaches the direct child. The guardian looks at the
    supervisor's process tree every :attr:`INTERVAL` seconds and remembers every process in
    it; when the supervisor's end of a pipe closes without a "clean" message (a SIGKILL), it
    stops and kills every remembered process that still runs (psutil checks the start time,
    so a recycled pid is left alone) and what they started since, then every process that
    carries this supervisor's tree cookie in its environment, and removes the Unix socket
    files the supervisor created. The cookie finds what was started in the last interval;
    the remembered tree finds what dropped its environment (``env -i``, ``sudo``, a
    subprocess with a clean ``env=``).
    """

    #: Seconds between two looks at the supervisor's tree (cheap: a few /proc reads on Linux).
    INTERVAL = 0.25 if sys.platform.startswith("linux") else 1.0

    def __init__(self, cookie: str, unix_files: Iterable[tuple[str, int]] = ()) -> None:
        self.cookie = cookie
        files = list(unix_files)
        root = os.getpid()
        read_end, self._write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the forked guardian
            try:
                os.close(self._write_end)
                self._serve(read_end, root, files)
            finally:
                os._exit(0)
        os.close(read_end)

    def _serve(self, read_end: int, root: int, files: list[tuple[str, int]]) -> None:  # pragma: no cover
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP, signal.SIGTTOU):
            signal.signal(number, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.setsid()  # out of reloadkit's process group: `kill -9 -PGID` must not take it too
        os.closerange(3, read_end)
        os.closerange(read_end + 1, _max_fd())
        tree = TreeTracker(root, exclude={os.getpid()})
        clean = False
        paths = {path for path, _inode in files}
        inodes = {inode for _path, inode in files}
        buffered = b""
        while True:
            try:
                readable, _, _ = select.select([read_end], [], [], self.INTERVAL)
                if not readable:
                    tree.look()
                    continue
                data = os.read(read_end, 4096)
            except InterruptedError:
                continue
            if not data:
                break
            *lines, buffered = (buffered + data).split(b"\n")
            for line in lines:
                word, _, rest = line.partition(b" ")
                if word == b"clean":
                    clean = True
                elif word == b"file":
                    inode, _, name = rest.partition(b" ")
                    inodes.add(int(inode))
                    paths.add(os.fsdecode(name))
        if not clean:
            tree.end()
            sweep_cookie(self.cookie, exclude={os.getpid()})
            for path in paths:  # a socket file we made, whichever of our names it has now
                try:
                    info = os.lstat(path)
                    if stat.S_ISSOCK(info.st_mode) and info.st_ino in inodes:
                        os.unlink(path)
                except OSError:
                    pass

    def add_unix_file(self, path: str, inode: int) -> None:
        """A socket file the supervisor made (a hand-over's new socket): removed on an
        unclean end, under that name or any other it was told of, if it is still ours."""
        self._tell(b"file %d %s\n" % (inode, os.fsencode(path)))

    def _tell(self, message: bytes) -> None:
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, message)

    def close(self) -> None:
        """The supervisor exits cleanly: the guardian leaves without a sweep."""
        if self._write_end < 0:
            return
        self._tell(b"clean\n")
        os.close(self._write_end)
        self._write_end = -1
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.005)


def sweep_cookie(cookie: str, exclude: set[int]) -> int:
    """Kill every process whose environment carries ``RELOADKIT_TREE=cookie``."""
    marker = f"RELOADKIT_TREE={cookie}".encode()
    killed = 0
    for _round in range(5):
        found = 0
        for pid in psutil.pids():
            if pid in exclude:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    carries = marker in handle.read().split(b"\0")
            except OSError:
                try:
                    carries = psutil.Process(pid).environ().get("RELOADKIT_TREE") == cookie
                except (psutil.Error, OSError):
                    carries = False
            if carries:
                try:
                    os.kill(pid, signal.SIGKILL)
                    found += 1
                except OSError:
                    pass
        killed += found
        if not found:
            break
    return killed


def _children_files_work() -> bool:
    me = os.getpid()
    return os.path.exists(f"/proc/{me}/task/{me}/children")


def _children_of(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (Linux's /proc/PID/task/TID/children)."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def direct_children(pid: int) -> list[int]:
    """The children of ``pid`` (reading a few /proc files on Linux, not every process's)."""
    if _CHILDREN_FILES:
        return _children_of(pid)
    try:
        return [proc.pid for proc in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def descendants(roots: Iterable[int]) -> set[int]:
    """Every process below ``roots``: Linux's per-thread ``children`` files where they exist
    (a few reads), else psutil (a walk over every process on the machine)."""
    if not _CHILDREN_FILES:
        found: set[int] = set()
        for pid in roots:
            try:
                found.update(proc.pid for proc in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
        return found
    seen: set[int] = set()
    queue = list(roots)
    while queue:
        for child in _children_of(queue.pop()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


_CHILDREN_FILES = _children_files_work()


class TreeTracker:
    """Every process seen below ``root``, remembered even after it re-parents away."""

    def __init__(self, root: int, exclude: Iterable[int] = ()) -> None:
        self.root = root
        self.exclude = set(exclude)
        self.known: dict[int, psutil.Process] = {}

    def _descendants(self, roots: Iterable[int]) -> set[int]:
        return descendants(roots)

    def _remember(self, pids: Iterable[int]) -> list[int]:
        new = []
        for pid in pids:
            if pid in self.known or pid in self.exclude:
                continue
            try:
                self.known[pid] = psutil.Process(pid)
                new.append(pid)
            except psutil.Error:
                continue
        return new

    def look(self) -> None:
        """Remember the current tree; forget remembered processes that are gone."""
        current = self._descendants([self.root])
        self._remember(current)
        for pid in [pid for pid in self.known if pid not in current]:
            if not _running(self.known[pid]):
                del self.known[pid]

    def end(self) -> int:
        """Stop every remembered process and what it started since, then kill them all."""
        stopped: set[int] = set()
        for _round in range(10):
            for pid, proc in self.known.items():
                if pid not in stopped and _running(proc):
                    try:
                        proc.send_signal(signal.SIGSTOP)  # no more forks while we look
                    except psutil.Error:
                        pass
                    stopped.add(pid)
            if not self._remember(self._descendants(list(self.known))):
                break
        return kill_processes(self.known.values())


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
