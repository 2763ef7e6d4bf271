"""A demo server on the standard library alone: ``reloadkit run -b 8000 -- python -m reloadkit.demo``.

It serves on the inherited socket, says which generation answers, and tells the
supervisor when it is ready.
"""

from __future__ import annotations

import os
import socketserver
from http.server import BaseHTTPRequestHandler, HTTPServer

from . import notify_ready, sockets

__all__ = ["main"]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        body = (
            f"Hello from reloadkit's demo: pid {os.getpid()}, "
            f"generation {os.environ.get('RELOADKIT_GENERATION', '?')}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _InheritedServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def main() -> None:
    listener = sockets()[0]
    server = _InheritedServer(listener.getsockname(), _Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    notify_ready()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
