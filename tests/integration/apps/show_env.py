"""Serves the values of the environment variables named on its command line: ``A=1 B=-``."""

import http.server
import os
import sys

import reloadkit

names = sys.argv[1:]
listener = reloadkit.sockets()[0]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = " ".join(f"{name}={os.environ.get(name, '-')}" for name in names).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer(listener.getsockname(), Handler, bind_and_activate=False)
server.socket = listener
server.serve_forever()
