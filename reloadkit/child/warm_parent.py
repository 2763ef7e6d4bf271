"""The warm parent: imports the installed modules once, then forks every generation from itself.

Runs in the command's own interpreter, started by ``reloadkit.proc.warm`` as
``PYTHON [the command's options] -c BOOTSTRAP`` and loaded by path under a private name (the
command may have no reloadkit installed, or another version). Standard library only.

Life: read the plan (modules to import, the command) from the control socket (fd
``$RELOADKIT_WARM_FD``, a ``SOCK_SEQPACKET`` pair with the supervisor); import each module,
leaving out, and telling, one that starts a thread or opens a descriptor (a fork would copy
a process whose thread is gone, and a descriptor the child must not have); ``gc.freeze()``;
say ready; then, per request, fork the generation as the supervisor's own child (clone(2)
with ``CLONE_PARENT``; else twice, and the grandchild re-parents to the supervisor, a child
subreaper), so it is reaped and tree-killed like a cold child, and becomes the
generation exactly as a cold child would start: its fds, process group, death signal,
signal dispositions, environment, cwd, ``sys.argv``/``sys.orig_argv``/``sys.path`` and
``__main__``; then runs the script, ``-m`` module or ``-c`` code. Asked to, the
installed-modules parent forks the project checkpoint the same way: the fork imports the
rest of its own plan (the project's modules) and then serves as a parent on a socket of its
own. The warm parent exits as soon as the supervisor's end closes (and by its death signal,
when the supervisor dies).
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ctypes
    import socket
    import types
    from typing import Any

    from reloadkit.child.warm_imports import Guard

#: The module names a fresh ``-c`` ``__main__`` has: a generation's ``__main__`` starts so.
_MAIN_KEYS = ("__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__", "__builtins__")
_PR_SET_PDEATHSIG = 1
_CLONE_PARENT = 0x00008000
#: clone(2)'s number where its first two arguments are the flags and the stack: with no stack
#: and no thread-id pointers, the order of the others does not matter. (glibc's fork() also
#: updates its cached thread id; raise() has asked the kernel since glibc 2.34.)
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120, "ppc64": 120, "i686": 120, "armv7l": 120}
_MAX_MESSAGE = 1 << 20
_NO_SIBLING = "the fork cannot make the supervisor its parent here (clone(2) with CLONE_PARENT)"
_MAX_FDS = 64


class _Fresh:
    """What the interpreter looked like before any warm import: the children start so."""

    def __init__(self) -> None:
        import signal

        self.signals = {}
        for number in range(1, signal.NSIG):
            try:
                handler = signal.getsignal(number)
            except (OSError, ValueError):
                continue
            if handler is not None:
                self.signals[number] = handler
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.path = list(sys.path)
        main = sys.modules["__main__"].__dict__
        self.main = {key: main[key] for key in _MAIN_KEYS if key in main}
        self.safe_path = bool(getattr(sys.flags, "safe_path", False))

    def path_for(self, mode: str, target: str) -> list:
        """``sys.path`` as the interpreter would make it for this command (``-c`` made ours)."""
        rest = self.path if self.safe_path else self.path[1:]
        if self.safe_path:
            return list(rest)
        if mode == "script":
            first = os.path.dirname(os.path.realpath(target))
        elif mode == "-m":
            first = os.getcwd()
        else:
            first = ""
        return [first, *rest]


class WarmParent:
    def __init__(self, fd: int) -> None:
        import socket

        self.fresh = _Fresh()
        self.ctl = socket.socket(fileno=fd)
        self.plan: dict = {}
        self.libc: ctypes.CDLL | None = None
        self.clone: Any = None  # libc's syscall(), for clone(2): see _sibling
        self.imports: Any = None  # warm_imports.py, loaded by path when warming
        # The environment it was started with: the project checkpoint's django.setup() adds
        # DJANGO_SETTINGS_MODULE, as the program does before its own call.
        self.started_environ = dict(os.environ)
        self.known: frozenset = frozenset()  # sys.modules as of the last fork (_known_modules)

    # --- talking to the supervisor ------------------------------------------------------

    def send(self, message: dict) -> None:
        import json

        self.ctl.send(json.dumps(message).encode())

    def receive(self) -> tuple:
        import array
        import json
        import socket

        fds = array.array("i")
        data, ancillary, _flags, _address = self.ctl.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        return json.loads(data), list(fds)

    # --- warming ------------------------------------------------------------------------

    def warm(self) -> None:
        """Import the planned modules, in the cold child's order, as the cold child would."""
        import time

        plan = self.plan
        started = time.monotonic()
        sys.argv[:] = plan["argv"]
        # The project checkpoint: where the project's modules were found (the program may add
        # its directory only when it runs); a generation gets its own sys.path again.
        fresh_path = self.fresh.path_for(plan["mode"], plan["target"])
        sys.path[:] = [*[root for root in plan.get("path", ()) if root not in fresh_path], *fresh_path]
        imports: Any = self._load_tracker("_reloadkit_warm_imports", "warm_imports.py")
        if imports is None:
            self.send({"error": "cannot load warm_imports.py beside the warm parent"})
            os._exit(1)
        self.imports = imports
        if plan.get("quiet"):
            # The project checkpoint: what its imports print, the first generation printed, and
            # the installed-modules parent too. The generations get the supervisor's stdio.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.close(null)
        exclude = set(plan.get("exclude", ())) | imports.TERMINAL_MODULES
        # Copies of the environment the project checkpoint holds (corrected in each generation).
        snapshots = set(plan.get("copies", ()))
        threads, fds = imports.threads(), imports.fds()
        imported = 0
        failed: list = []
        guard = imports.Guard(exclude, snapshots)
        skip = set(plan.get("skip", ()))  # not imported by themselves
        guard.failed.update(plan.get("refuse", skip))  # not imported at all
        sys.meta_path.insert(0, guard)
        real_environ = os.environ
        os.environ = guard.environ(real_environ)  # noqa: B003 - the same variables, watched
        # `python -m X` runs X (or X.__main__) itself: imported before, runpy warns, as no cold start does.
        command_module = {plan["target"], plan["target"] + ".__main__"} if plan.get("mode") == "-m" else set()
        try:
            for name in plan["modules"]:
                if name in sys.modules or name in skip or name in guard.failed or guard.blocks(name):
                    continue
                if name in command_module or name.startswith("__main__"):
                    continue
                parent = name.rpartition(".")[0]
                if parent and parent not in sys.modules and not name.startswith(imports.DJANGO_SETUP):
                    continue  # its package failed or was left out: so is it
                blocked = guard.blocked
                why, missing = imports.attempt(name, guard)
                if why is not None:
                    failed.append([name, why, missing])
                    # Out with it for the rest of this build; what it first imported was undone
                    # with it and is tried by itself when its turn comes.
                    guard.failed.add(name)
                else:
                    imported += 1
                    if guard.blocked > blocked:  # it went on without a module left out: not as cold
                        self._retry(name, "imports a module that was left out and carries on without it")
                self._check(guard, name, threads, fds)
        finally:
            os.environ = real_environ  # noqa: B003
            guard.close()
        self._finish_warming(started, imported, failed, threads)

    def _check(self, guard: "Guard", name: str, threads: int, fds: dict) -> None:
        """Leave out what made the process unfit to fork: a thread, a descriptor, a variable read."""
        if guard.culprit is not None:
            self._retry(*guard.culprit)
        if self.imports.threads() > threads:
            self._retry(guard.thread_starter or name, "starts a thread when imported")
        new = [link for fd, link in sorted(self.imports.fds().items()) if fds.get(fd) != link]
        if new:
            self._retry(name, f"opens {self.imports.describe(new[0])} when imported")

    def _finish_warming(self, started: float, imported: int, failed: list, threads: int) -> None:
        import time

        self.tracker = self._load_tracker()
        prime = getattr(self.tracker, "prime", None)
        if prime is not None:
            try:
                prime()  # a generation's tracker then takes the verdicts on these modules' files
            except Exception:  # noqa: BLE001 - it only saves time: each generation decides then
                pass
        self.adopt = self._load_tracker("_reloadkit_adopt", "adopt.py")
        self.reloaders = self._load_tracker("_reloadkit_reloaders", "reloaders.py")
        self.libc, self.clone = _libc()
        if self.imports.threads() > threads:  # past the checks: a generation would lack it
            self.send({"error": "a thread started in the warm parent after its imports"})
            os._exit(1)
        sys.path[:] = self.fresh.path
        _flush_stdio()
        import gc

        gc.collect()
        if hasattr(gc, "freeze"):
            gc.freeze()  # the children must not copy the warm heap by touching it in a collection
        self.send({
            "ready": len(sys.modules),
            "imported": imported,
            "failed": failed,
            "ms": round((time.monotonic() - started) * 1000),
            "project": sum(1 for name in self.plan.get("project", ()) if name in sys.modules),
        })

    def _retry(self, name: str, why: str) -> None:
        """Leave ``name`` out: tell the supervisor, which starts another parent without it."""
        self.send({"retry": name, "why": why})
        os._exit(0)

    def _load_tracker(self, name: str = "_reloadkit_import_tracker", filename: str = "tracker.py") -> object:
        """reloadkit's import tracker (tracker.py beside this file), for children that report;
        or another child-side module (adopt.py: the generations' binds take the held sockets)."""
        import importlib.util

        module = sys.modules.get(name)
        if module is not None:
            return module
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:  # noqa: BLE001 - tracking (and adoption) is optional
            del sys.modules[name]
            return None
        return module

    # --- serving ------------------------------------------------------------------------

    def serve(self) -> dict:
        """Fork a generation per request; returns only in a generation, with its job."""
        while True:
            job, fds = self._next_job()
            _flush_stdio()  # what the warm parent buffered must not print twice
            self._known_modules()
            if job.get("build"):
                self._fork_checkpoint(job, fds)
                continue
            if job.get("spare"):
                job, fds = self._fork_spare(job, fds)
                if job is None:
                    continue
                self._become(job, fds)
                return job
            if self._fork_twice(job, fds):
                return job

    def _fork_spare(self, request: dict, fds: list) -> tuple:
        """Fork the next generation ahead, while the supervisor waits for a burst of changes
        to settle: it says its pid, then waits on its own socket (``fds[0]``) for the start's
        job. Returns that job in the spare, (None, None) here. Only where the fork makes the
        supervisor its parent at once (:meth:`_sibling`); else it says why not."""
        import socket

        sock = socket.socket(fileno=fds[0])
        _close_all(fds[1:])
        child = self._sibling() if os.getppid() == request["supervisor"] else None
        if child == 0:
            self.ctl.close()  # the parent's: the supervisor sees the parent end with the parent alone
            self.ctl = sock
            self._die_with(request["supervisor"])
            try:
                self.send({"spare": os.getpid()})
            except OSError:
                os._exit(0)  # the supervisor no longer wants it
            job, fds = self._next_job()  # the supervisor closing it (the start went elsewhere) ends us
            _leave_the_wakers_core()
            return job, fds
        if child is not None:
            sock.close()
            return None, None
        try:
            sock.send(b'{"nospare": "%s"}' % _NO_SIBLING.encode())
        except OSError:
            pass
        sock.close()
        return None, None

    def _fork_checkpoint(self, request: dict, fds: list) -> None:
        """Fork the project checkpoint from this parent, which holds the installed modules it
        would import first: it says its pid on its own socket (``fds[0]``), imports the rest of
        its plan (the project's modules), says ready there and serves on it as a parent. Only
        where the fork makes the supervisor its parent at once (:meth:`_sibling`); else it says
        why not, and the supervisor starts a fresh interpreter."""
        import socket

        sock = socket.socket(fileno=fds[0])
        _close_all(fds[1:])
        child = self._sibling() if os.getppid() == request["supervisor"] else None
        if child == 0:
            try:
                self.ctl.close()
                self.ctl = sock
                self._die_with(request["supervisor"])
                self.send({"building": os.getpid()})
                self.plan = request["build"]
                self.warm()
            except BaseException:  # noqa: BLE001 - the supervisor gave up on it: never the parent's code path
                os._exit(1)
            return
        if child is None:
            try:
                sock.send(b'{"nobuild": "%s"}' % _NO_SIBLING.encode())
            except OSError:
                pass
        sock.close()

    def _next_job(self) -> tuple:
        """The next start request; the warm parent exits once the supervisor's end closes."""
        while True:
            try:
                job, fds = self.receive()
            except InterruptedError:
                continue
            except OSError:
                os._exit(0)
            if job is None:
                os._exit(0)  # the supervisor is gone or done with us
            return job, fds

    def _known_modules(self) -> None:
        """The modules a generation starts with, as a set made before the fork: made in the
        generation, touching each name copies the pages that hold them (about 1 ms). Only
        imports change sys.modules here, so a set of its size is current."""
        import fcntl  # noqa: F401 - what the generation imports before its tracker starts (_place_fds)

        if len(self.known) != len(sys.modules):
            self.known = frozenset(sys.modules)

    def _fork_twice(self, job: dict, fds: list) -> bool:
        """Fork the generation as the supervisor's child; True in the generation.

        Where clone(2) can make the supervisor its parent at once (:meth:`_sibling`), one
        copy of this process does; else through a middle process that exits at once, so the
        generation re-parents to the supervisor (two copies, and a wait for the middle one's
        exit: about 10 ms of a big project's reload)."""
        if os.getppid() == job["supervisor"]:
            child = self._sibling()
            if child == 0:
                self._become(job, fds)
                return True
            if child is not None:
                self.send({"forked": child})
                _close_all(fds)
                return False
        try:
            middle = os.fork()
        except OSError as exc:
            self.send({"error": f"fork failed: {exc}"})
            _close_all(fds)
            return False
        if middle == 0:
            try:
                child = os.fork()
            except OSError as exc:
                self.send({"error": f"fork failed: {exc}"})
                os._exit(1)
            if child == 0:
                self._become(job, fds)
                return True
            self.send({"forked": child})
            os._exit(0)
        _close_all(fds)
        while True:
            try:
                os.waitpid(middle, 0)
                return False
            except InterruptedError:
                continue
            except ChildProcessError:
                return False

    def _sibling(self) -> "int | None":
        """``os.fork()`` with ``CLONE_PARENT``: the child's parent is ours. Python's own fork
        hooks run around it as ``os.fork()`` runs them (the process is single-threaded: the
        warm parent never keeps a thread). None where it is not known to work (this machine's
        clone numbering, no libc) or the kernel refused: then fork twice."""
        number = _SYS_CLONE.get(os.uname().machine)
        if number is None or self.clone is None:
            return None
        import ctypes
        import signal

        ctypes.pythonapi.PyOS_BeforeFork()
        pid = self.clone(number, _CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            ctypes.pythonapi.PyOS_AfterFork_Child()
            return 0
        ctypes.pythonapi.PyOS_AfterFork_Parent()
        if pid < 0:
            self.clone = None  # refused (a seccomp filter, a kernel without it): not again
            return None
        return int(pid)

    def _become(self, job: dict, fds: list) -> None:
        """In the grandchild: become the generation, as a cold child would start."""
        import time

        try:
            supervisor = job["supervisor"]
            deadline = time.monotonic() + 5.0
            while os.getppid() != supervisor:  # the middle process is exiting: re-parenting
                if time.monotonic() > deadline:
                    raise OSError("not re-parented to the supervisor")
                time.sleep(0.0001)
            self._die_with(supervisor)
            os.setpgid(0, 0 if job["own_group"] else job["pgid"])
            ctl = self._place_fds(fds)
            env = job["env"]
            pid = str(os.getpid())
            if job["listen_pid"]:
                env["LISTEN_PID"] = pid
            env["RELOADKIT_PID"] = pid
            os.environ.clear()
            os.environ.update(env)
            self.imports.correct_snapshots(self.started_environ, env)
            _show_environment(env)
            os.chdir(job["cwd"])
            self._fresh_signals()
            mode, target = job["mode"], job["target"]
            sys.argv[:] = job["argv"]
            sys.orig_argv[:] = job["orig_argv"]
            sys.path[:] = self.fresh.path_for(mode, target)
            sys.path_importer_cache.pop(sys.path[0] if sys.path else "", None)
            sys.path_importer_cache.pop("", None)
            main = sys.modules["__main__"].__dict__
            main.clear()
            main.update(self.fresh.main)
            self._hooks(env)
            ctl.send(b'{"started": %d}' % os.getpid())
            ctl.close()
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave
            try:
                self.send({"error": f"{type(exc).__name__}: {exc}"})
            finally:
                os._exit(127)

    def _die_with(self, supervisor: int) -> None:
        """``PR_SET_PDEATHSIG`` = SIGKILL, as a cold child has; out at once if the supervisor
        already died."""
        import signal

        if self.libc is not None and self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != supervisor:
                os._exit(1)  # the supervisor died meanwhile

    def _fresh_signals(self) -> None:
        """The signal dispositions and mask of a fresh interpreter (the parent's may differ)."""
        import signal

        signal.set_wakeup_fd(-1)
        for number, handler in self.fresh.signals.items():
            try:
                if signal.getsignal(number) is not handler:
                    signal.signal(number, handler)
            except (OSError, ValueError, TypeError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, self.fresh.mask)

    def _hooks(self, env: dict) -> None:
        """What the ``--imports`` hook starts in a cold child: the tracker, bind adoption, one reloader."""
        tracker = getattr(self, "tracker", None)
        if tracker is not None and "1" in (env.get("RELOADKIT_IMPORTS"), env.get("RELOADKIT_WARM_REPORT")):
            try:
                tracker.WARM_MODULES = self.known  # the warm parent's: known
                tracker.start_tracking()
            except Exception as exc:  # noqa: BLE001 - as the --imports hook does
                sys.stderr.write(f"reloadkit: not tracking imports in this process: {type(exc).__name__}: {exc}\n")
        for attribute, variable, value in (("adopt", "RELOADKIT_BINDS_ASK", None), ("reloaders", "RELOADKIT_ONE_RELOADER", "1")):
            module = getattr(self, attribute, None)
            if module is not None and env.get(variable) and value in (None, env[variable]):
                try:
                    module.install()  # as the hook does (child/_hook/sitecustomize.py)
                except Exception as exc:  # noqa: BLE001 - never stop the program for these
                    sys.stderr.write(f"reloadkit: {attribute} not installed: {type(exc).__name__}: {exc}\n")

    def _place_fds(self, fds: list) -> "socket.socket":
        """``fds`` = stdin, stdout, stderr, sockets...: at 0, 1, 2, 3...; every other fd closed.

        Returns the control socket, moved above the others (closed once the start is told).
        """
        import fcntl
        import socket

        count = len(fds)
        control = self.ctl.detach()
        high = max([count, control + 1, *[fd + 1 for fd in fds]])
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, high) for fd in fds]
        control = fcntl.fcntl(control, fcntl.F_DUPFD_CLOEXEC, max([high, *[fd + 1 for fd in moved]]))
        for index, source in enumerate(moved):
            os.dup2(source, index, inheritable=True)
        os.closerange(count, control)
        try:
            limit = int(os.sysconf("SC_OPEN_MAX"))
        except (OSError, ValueError):
            limit = 65536
        os.closerange(control + 1, limit)
        self.ctl = socket.socket(fileno=control)
        return self.ctl


def _leave_the_wakers_core() -> None:
    """Move off the core this process was woken on: the supervisor's, which the kernel
    chose because the supervisor woke it (a wake-up over a socket is a "sync" one), and
    where the supervisor's own work after the start would compete with the generation's.
    The affinity mask is put back as it was: the program sees the one it was started with."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return
    try:
        allowed = getaffinity(0)
        here = _current_cpu()
        if here is None or here not in allowed or len(allowed) < 2:
            return
        os.sched_setaffinity(0, allowed - {here})
        os.sched_setaffinity(0, allowed)
    except OSError:
        pass


def _current_cpu() -> "int | None":
    try:
        return int(_stat_fields("thread-self")[36])  # processor (field 39)
    except (OSError, ValueError, IndexError):
        return None


def _stat_fields(which: str) -> list:
    """The fields of /proc/WHICH/stat after the command's name (field 3 is the first)."""
    with open(f"/proc/{which}/stat", "rb") as handle:
        stat = handle.read()
    return stat[stat.rindex(b")") + 2 :].split()


def _libc() -> tuple:
    """(libc, its ``syscall()`` for clone(2)), or (None, None) without them. The GIL stays held
    across ``syscall()``, as ``os.fork()`` holds it across ``fork()``."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = ctypes.PyDLL(None).syscall
    except (OSError, AttributeError):
        return None, None
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long] * 6
    return libc, syscall


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _close_all(fds: list) -> None:
    for fd in fds:
        os.close(fd)


def _show_environment(env: dict) -> None:
    """Write the generation's environment over the one this process was exec'd with, so
    that /proc/PID/environ (what ps, psutil and reloadkit itself read) shows it too.

    The strings there are no longer the C library's (``os.environ.clear()`` and ``update()``
    unset and set every variable), and the warm parent was started with room to spare (a
    padded ``RELOADKIT_WARM_FD``). Linux only; elsewhere, or if it does not fit, left as it is.
    """
    try:
        import ctypes

        fields = _stat_fields("self")
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51)
        block = b"".join(os.fsencode(key) + b"=" + os.fsencode(value) + b"\0" for key, value in env.items())
        if start <= 0 or len(block) > end - start:
            return
        ctypes.memmove(start, block + b"\0" * (end - start - len(block)), end - start)
    except (OSError, ValueError, IndexError, ImportError):
        pass


def main() -> dict:
    """The warm parent's life; returns (in a generation only) the job to run."""
    fd = int(os.environ.pop("RELOADKIT_WARM_FD"))
    parent = WarmParent(fd)
    plan, fds = parent.receive()
    for extra in fds:
        os.close(extra)
    if plan is None:
        os._exit(0)
    parent.plan = plan
    parent.warm()
    return parent.serve()


def run(job: dict) -> None:
    """Run the command's code in ``__main__``, as the interpreter would have."""
    mode, target = job["mode"], job["target"]
    main = sys.modules["__main__"]
    try:
        if mode == "script":
            import importlib.machinery

            path = job["file"]
            main.__dict__.update(__file__=path, __cached__=None,
                                 __loader__=importlib.machinery.SourceFileLoader("__main__", path))
            with open(path, "rb") as handle:
                source = handle.read()
            code = compile(source, path, "exec", dont_inherit=True)
            del source
            exec(code, main.__dict__)
        elif mode == "-m":
            import runpy

            runpy._run_module_as_main(target)  # type: ignore[attr-defined]  # what `python -m` calls
        else:
            exec(compile(target, "<string>", "exec", dont_inherit=True), main.__dict__)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        # The interpreter prints it and exits by SIGINT, as a cold child does; its traceback
        # must start at the command's code too, not at the bootstrap's frames above it.
        _print_from_user_code(exc)
        raise
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter prints it
        sys.excepthook(type(exc), exc, _from_user_code(exc))
        raise SystemExit(1) from None


def _from_user_code(exc: BaseException) -> "types.TracebackType | None":
    """``exc``'s traceback without this module's frame (run's), where a cold child's starts.

    The interpreter prints an exception's own ``__traceback__`` whatever traceback
    ``sys.excepthook`` is given, so it is replaced, not only passed.
    """
    tb = exc.__traceback__
    user = tb.tb_next if tb is not None else None
    exc.__traceback__ = user
    return user


def _print_from_user_code(exc: BaseException) -> None:
    """For an exception left to the interpreter (it adds the bootstrap's frames on its way
    out): the hook that prints it sees the traceback from the command's code on."""
    user = _from_user_code(exc)
    previous = sys.excepthook

    def hook(kind: type, value: BaseException, tb: "types.TracebackType | None") -> None:
        sys.excepthook = previous
        if value is exc:
            value.__traceback__ = tb = user
        previous(kind, value, tb)

    sys.excepthook = hook
