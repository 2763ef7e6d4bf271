"""Writes what a generation looks like from inside to $REPORT_DIR/gen-N.json, then idles.

Imported by each way of starting Python (serve.py, ``-m pkg``, ``-c``, a console script), so a
cold child and a warm one can be compared item by item.
"""

import ctypes
import json
import os
import random
import signal
import sys


def _fds() -> dict:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory listdir used
        if link.startswith("/proc/") and link.endswith("/fd"):
            continue
        found[fd] = {"link": link if fd <= 2 else link.split(":")[0], "inheritable": os.get_inheritable(fd)}
    return found


def _proc_environ() -> dict:
    """/proc/self/environ, as ps and psutil see it."""
    with open("/proc/self/environ", "rb") as handle:
        entries = handle.read().split(b"\0")
    return dict(os.fsdecode(entry).split("=", 1) for entry in entries if b"=" in entry)


def _pdeathsig() -> int:
    value = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value


def _handler(handler: object) -> str:
    if handler in (signal.SIG_DFL, signal.SIG_IGN):
        return str(signal.Handlers(handler).name)
    return getattr(handler, "__qualname__", repr(handler))


def snapshot() -> dict:
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgrp(),
        "sid": os.getsid(0),
        "pdeathsig": _pdeathsig(),
        "argv": sys.argv,
        "orig_argv": sys.orig_argv,
        "executable": sys.executable,
        "path": sys.path,
        "flags": list(sys.flags),
        "warnoptions": sys.warnoptions,
        "xoptions": sys._xoptions,
        "main_file": getattr(main, "__file__", None),
        "main_spec": getattr(spec, "name", None),
        "main_keys": sorted(key for key in vars(main) if key.startswith("__")),
        "main_loader": type(getattr(main, "__loader__", None)).__name__,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "proc_env": _proc_environ(),
        "fds": _fds(),
        # by number: Python 3.10's Signals has no name for some (16, SIGSTKFLT)
        "signals": {str(int(n)): _handler(signal.getsignal(n)) for n in signal.valid_signals() if n < signal.SIGRTMIN},
        "sigmask": sorted(int(n) for n in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "threads": len(os.listdir("/proc/self/task")),
        "affinity": sorted(os.sched_getaffinity(0)),  # a fork ahead moves off the supervisor's core, and back
        "stdout_line_buffering": sys.stdout.line_buffering,
        "random": random.random(),
    }


def main() -> None:
    report = snapshot()
    path = os.path.join(os.environ["REPORT_DIR"], f"gen-{os.environ['RELOADKIT_GENERATION']}.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(report, handle)
    os.replace(path + ".tmp", path)
    while True:
        signal.pause()
