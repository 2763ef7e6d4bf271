"""A tiny HTTP server on the inherited socket that answers with VERSION from ./version.py.

Flags: --ignore-term (ignore SIGTERM), --grandchild (start a `sleep` and record its pid in
grandchildren.txt), --graceful-streams (on SIGTERM, wait for open /stream responses to end),
--ready (send READY=1). Every start appends "pid generation changed" to starts.txt.
"""

import os
import signal
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.getcwd())
from version import VERSION  # noqa: E402

import reloadkit  # noqa: E402

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

listener = reloadkit.sockets()[0]


def serve(conn: socket.socket) -> None:
    with conn:
        request = conn.recv(65536)
        if request.startswith(b"GET /stream"):
            streams.append(conn)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nstreaming")
            threading.Event().wait(3600)
            return
        body = VERSION.encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


if "--ready" in flags:
    reloadkit.notify_ready()
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
