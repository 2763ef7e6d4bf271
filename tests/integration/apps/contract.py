"""Checks the fd contract from inside the child, writes it as JSON, then serves or exits.

Usage: contract.py REPORT_PATH [serve|exit:N]
"""

import json
import os
import socket
import sys

report_path, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "serve")
env_before = {key: value for key, value in os.environ.items()
              if key.startswith(("LISTEN_", "WERKZEUG_", "RELOADKIT_", "NOTIFY_"))}
fds = sorted(int(name) for name in os.listdir("/proc/self/fd"))
inheritable = {}
for fd in fds:
    try:
        inheritable[fd] = os.get_inheritable(fd)
    except OSError:
        pass  # the directory handle listdir used

import reloadkit  # noqa: E402

report = {"pid": os.getpid(), "env": env_before, "fds": fds, "inheritable": inheritable, "sockets": []}
try:
    found = reloadkit.sockets_by_name()
except reloadkit.NoSocketsError as exc:
    report["error"] = str(exc)
    found = {}
for name, sock in found.items():
    report["sockets"].append({
        "name": name, "fd": sock.fileno(), "family": sock.family.name, "type": sock.type.name,
        "address": sock.getsockname(),
        "listening": sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        "cloexec_after": not sock.get_inheritable(),
    })
report["env_after"] = {key: value for key, value in os.environ.items() if key.startswith(("LISTEN_", "WERKZEUG_"))}
with open(report_path + ".tmp", "w") as handle:
    json.dump(report, handle)
os.replace(report_path + ".tmp", report_path)

if mode.startswith("exit:"):
    sys.exit(int(mode[5:]))
if found:
    sock = next(iter(found.values()))
    while True:
        conn, _ = sock.accept()
        conn.recv(65536)
        body = f"pid {os.getpid()} gen {os.environ.get('RELOADKIT_GENERATION')}".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.close()
else:
    import signal
    while True:
        signal.pause()  # no socket to serve: idle until reloadkit stops us
