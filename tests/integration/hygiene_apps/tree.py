"""A child that grows a process tree and records every pid in it, for the hygiene tests.

Usage: tree.py RECORD [FLAG...]. Every process appends "ROLE PID GENERATION" to RECORD, one
line per write (O_APPEND, so lines from different processes never interleave); the child
writes "ready PID GENERATION" last, after everything it started has recorded itself.

Flags, in the order they act:
  --int-exit0       on SIGINT, exit with status 0 at once (a server that handles Ctrl+C)
  --ignore-stop     ignore SIGINT and SIGTERM (a server that will not stop)
  --early           before taking the sockets, start a grandchild that inherits everything
                    (close_fds=False): the positive control for the descriptor tests
  --sockets         take the inherited sockets with reloadkit.sockets()
  --grandchild      start a shell grandchild (close_fds=False, like os.system) that starts
                    a great-grandchild `sleep`
  --daemon          double-fork a daemon: setsid, the middle process exits, the daemon
                    execs `sleep` (re-parented away from the child)
  --scrubbed        double-fork a daemon that execs `sleep` with an empty environment
  --replace=PATH    unlink PATH and put a regular file there (a child that takes a path over)
  --replace-socket=PATH  unlink PATH and bind a Unix socket of its own there
  --exit=N[@G]      exit with status N once everything is recorded and the test has
                    created RECORD.go (only in generation G)
  --serve           answer every connection on every socket with "pid PID gen N" (from
                    before --exit waits: a server that served, then exits)
Without --exit, the child then waits for ever.
"""

import os
import signal
import subprocess
import sys
import time

record_path = sys.argv[1]
flags = sys.argv[2:]
generation = os.environ.get("RELOADKIT_GENERATION", "?")
SLEEP = "sleep"


def record(role: str, pid: int) -> None:
    fd = os.open(record_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{role} {pid} {generation}\n".encode())
    finally:
        os.close(fd)


def recorded(role: str, count: int = 1) -> bool:
    try:
        with open(record_path) as handle:
            lines = [line.split() for line in handle]
    except FileNotFoundError:
        return False
    return sum(1 for line in lines if line[0] == role and line[2] == generation) >= count


def wait_recorded(role: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while not recorded(role, count):
        if time.monotonic() > deadline:
            sys.exit(f"tree.py: {role} never recorded itself")
        time.sleep(0.005)


def double_fork(role: str, env: dict[str, str] | None) -> None:
    middle = os.fork()
    if middle == 0:
        try:
            os.setsid()
            daemon = os.fork()
            if daemon == 0:
                record(role, os.getpid())
                if env is None:
                    os.execvp(SLEEP, [SLEEP, "1000"])
                os.execve("/bin/sleep" if os.path.exists("/bin/sleep") else "/usr/bin/sleep", [SLEEP, "1000"], env)
        finally:
            os._exit(0)
    os.waitpid(middle, 0)
    wait_recorded(role)


record("child", os.getpid())
signal.signal(signal.SIGINT, signal.SIG_DFL)  # die of SIGINT like a server does, without a traceback
sockets = []
for flag in flags:
    if flag == "--int-exit0":
        signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    elif flag == "--ignore-stop":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif flag == "--early":
        early = subprocess.Popen([SLEEP, "1000"], close_fds=False)
        record("early", early.pid)
    elif flag == "--sockets":
        import reloadkit

        sockets = reloadkit.sockets()
    elif flag == "--grandchild":
        script = 'echo "grandchild $$ $G" >> "$R"; sleep 1000 & echo "great-grandchild $! $G" >> "$R"; wait'
        subprocess.Popen(["sh", "-c", script], close_fds=False, env={**os.environ, "R": record_path, "G": generation})
        wait_recorded("great-grandchild")
    elif flag == "--daemon":
        double_fork("daemon", None)
    elif flag == "--scrubbed":
        double_fork("scrubbed", {"PATH": os.defpath})
    elif flag.startswith("--replace-socket="):
        import socket

        path = flag.split("=", 1)[1]
        os.unlink(path)
        own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        own.bind(path)
        own.listen()
    elif flag.startswith("--replace="):
        path = flag.split("=", 1)[1]
        os.unlink(path)
        with open(path, "w") as handle:
            handle.write("the child's own file\n")

if "--serve" in flags:
    import threading

    def serve(listener) -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                body = f"pid {os.getpid()} gen {generation}".encode()
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    for listener in sockets:
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
record("ready", os.getpid())
for flag in flags:
    if flag.startswith("--exit="):
        code, _, only = flag.split("=", 1)[1].partition("@")
        if not only or only == generation:
            deadline = time.monotonic() + 30
            while not os.path.exists(record_path + ".go") and time.monotonic() < deadline:
                time.sleep(0.005)  # the test looks at the tree first
            sys.exit(int(code))
while True:
    signal.pause()
