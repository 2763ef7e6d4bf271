"""An HTTP server on reloadkit's socket that imports the installed modules named in
$WARM_LIBS (each one a pitfall of forking: a thread, a socket, buffered output, atexit)
and the project's own module, then answers JSON: pid, generation, VERSION, a random number,
the modules imported in another process (the warm parent) and where wsgiref's copy of the
environment differs from it. SIGTERM ends it cleanly (atexit handlers run, stdout is flushed)."""

import importlib
import json
import os
import random
import select
import signal
import sys

if os.environ.get("FW_SETUP"):
    os.environ.setdefault("FW_SETTINGS", "project")  # the project sets its framework up (test_warm's fw)

for name in filter(None, os.environ.get("WARM_LIBS", "").split(",")):
    importlib.import_module(name)

if os.environ.get("PID_STRICT") and sys.modules["pidlib"].PID != os.getpid():
    sys.exit("pidlib was set up in another process")  # a library that cannot be forked warm

import project_mod  # noqa: E402

import reloadkit  # noqa: E402


def held_by_another_process() -> list:
    """The loaded modules that noted another pid (``PID``) when imported: the warm parent's."""
    pids = {name: getattr(module, "PID", None) for name, module in list(sys.modules.items())
            if type(module).__name__ != "_LazyModule"}  # a lookup would run a lazy one
    return sorted(name for name, pid in pids.items() if isinstance(pid, int) and pid != os.getpid())


def snapshot_diff() -> dict:
    """Where wsgiref's copy of the environment (taken when imported) and the environment differ,
    with the copy's values ("PID" for this process's pid), and the copy's RELOADKIT_* ones."""
    handlers = sys.modules.get("wsgiref.handlers")
    if handlers is None:
        return {}
    copy = handlers.BaseHandler.os_environ
    keys = {key for key in set(copy) | set(os.environ) if copy.get(key) != os.environ.get(key)}
    keys |= {key for key in copy if key.startswith("RELOADKIT_")}
    return {key: (copy[key].replace(str(os.getpid()), "PID") if key in copy else None) for key in sorted(keys)}


def lazy() -> str | None:
    """Whether lazylib's lazy submodule (test_warm's LIBS) is still to run: type() does not
    run it, as an attribute lookup would."""
    module = sys.modules.get("lazylib._heavy")
    return None if module is None else "pending" if type(module).__name__ == "_LazyModule" else "ran"


# A graceful stop: SIGTERM is acted on between requests, never in the middle of one.
wakeup_read, wakeup_write = os.pipe()
os.set_blocking(wakeup_write, False)
signal.set_wakeup_fd(wakeup_write)
signal.signal(signal.SIGTERM, lambda *_: None)
RANDOM = random.random()
sock = reloadkit.sockets()[0]
print(f"serving pid {os.getpid()}", flush=True)
while True:
    ready, _, _ = select.select([sock, wakeup_read], [], [])
    if wakeup_read in ready:
        sys.exit(0)
    conn, _ = sock.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:  # all of it: closing with unread bytes resets
            chunk = conn.recv(65536)
            if not chunk:
                break
            request += chunk
        body = json.dumps({"pid": os.getpid(), "generation": os.environ["RELOADKIT_GENERATION"],
                           "version": project_mod.VERSION, "random": RANDOM,
                           "held": held_by_another_process(), "snapshot_diff": snapshot_diff(),
                           "threads": len(os.listdir("/proc/self/task")), "lazy": lazy()}).encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
