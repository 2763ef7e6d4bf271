"""A tiny HTTP server on the inherited socket that answers with VERSION from ./version.py.

Flags: --ignore-term (ignore SIGTERM), --grandchild (start a `sleep` and record its pid in
grandchildren.txt), --graceful-streams (on SIGTERM, wait for open /stream responses to end),
By default SIGTERM is graceful, as in real servers: stop accepting, finish the requests in
flight, exit 0. --ready (send READY=1), --wait-release (before serving and READY=1, wait until a file
release-<generation> exists), GET /busy (100 ms of CPU, announced in busy.txt), --report-notify (write NOTIFY_SOCKET to notify.txt), --abrupt (die on SIGTERM at once, as
werkzeug's and waitress's servers do), --hold-exit (after SIGTERM, stop accepting, then wait until a
file exit-<generation> exists before leaving: a slow shutdown), --second-port (bind 127.0.0.1 at
the port in second-port.txt too, as an app with a port of its own: exit 1 if it is taken).
Every start appends "pid generation changed" to starts.txt.
"""

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.getcwd())
from version import VERSION

import reloadkit

flags = set(sys.argv[1:])
with open("starts.txt", "a") as handle:
    handle.write(f"{os.getpid()} {os.environ.get('RELOADKIT_GENERATION')} {os.environ.get('RELOADKIT_CHANGED', '')}\n")
if "--ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--grandchild" in flags:
    sleeper = subprocess.Popen(["sleep", "1000"])
    with open("grandchildren.txt", "a") as handle:
        handle.write(f"{sleeper.pid}\n")
streams: list[socket.socket] = []
if "--graceful-streams" in flags:
    def graceful(_number: int, _frame: object) -> None:
        while streams:  # a "graceful" server that waits for every open response: for ever
            threading.Event().wait(0.05)
        os._exit(0)
    signal.signal(signal.SIGTERM, graceful)

second = None
if "--second-port" in flags:
    second = socket.socket()
    try:
        second.bind(("127.0.0.1", int(open("second-port.txt").read())))
        second.listen()
    except OSError as exc:
        print(f"second port: {exc}", file=sys.stderr)
        sys.exit(1)
listener = reloadkit.sockets()[0]
listener.setblocking(False)  # several generations may share the queue (overlap mode)
in_flight: list[threading.Thread] = []
wake_read, wake_write = os.pipe()
os.set_blocking(wake_write, False)
signal.set_wakeup_fd(wake_write)
stop_on_term = not flags & {"--ignore-term", "--graceful-streams", "--abrupt"}
if stop_on_term:
    signal.signal(signal.SIGTERM, lambda _number, _frame: None)


def serve(conn: socket.socket) -> None:
    with conn:
        request = conn.recv(65536)
        if not request:  # a connection closed without a request (reloadkit's readiness probe)
            return
        if request.startswith(b"GET /busy"):  # 100 ms of CPU work, announced in busy.txt
            with open("busy.txt", "w") as handle:
                handle.write("started\n")
            until = time.process_time() + 0.1
            while time.process_time() < until:
                pass
        elif request.startswith(b"GET /stream"):
            streams.append(conn)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nstreaming")
            threading.Event().wait(3600)
            return
        body = VERSION.encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


if "--report-notify" in flags:
    with open("notify.txt", "w") as handle:
        handle.write(os.environ.get("NOTIFY_SOCKET", ""))
if "--wait-release" in flags:
    release = f"release-{os.environ.get('RELOADKIT_GENERATION')}"
    while not os.path.exists(release):  # a stop request while waiting ends us at once
        if select.select([wake_read], [], [], 0.01)[0] and signal.SIGTERM in os.read(wake_read, 64):
            sys.exit(0)
if "--ready" in flags:
    reloadkit.notify_ready()
while True:
    readable, _, _ = select.select([listener, wake_read], [], [])
    if wake_read in readable and stop_on_term and signal.SIGTERM in os.read(wake_read, 64):
        break
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        continue
    connection.setblocking(True)
    worker = threading.Thread(target=serve, args=(connection,), daemon=True)
    in_flight.append(worker)
    worker.start()
    in_flight[:] = [thread for thread in in_flight if thread.is_alive()]
for thread in in_flight:  # stop accepting, finish what is in flight, leave
    thread.join(timeout=5)
if "--hold-exit" in flags:
    listener.close()
    deadline = time.monotonic() + 60
    while not os.path.exists(f"exit-{os.environ.get('RELOADKIT_GENERATION')}") and time.monotonic() < deadline:
        time.sleep(0.01)
sys.exit(0)
