"""run_with_reloader(main) where main binds its own port: reloadkit holds it, no bind= needed."""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import reloadkit


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        from version import VERSION

        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    reloadkit.run_with_reloader(main)
