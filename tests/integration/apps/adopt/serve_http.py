"""An ordinary http.server app: HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()."""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from version import VERSION


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
