"""A WSGI app behind reloadkit's live-reload middleware, on the inherited socket.

``/`` is an HTML page: TEXT from ./view.py, this generation, and whether the request came
before or after this process told reloadkit it was ready. ``/static/NAME`` serves
./static/NAME; ``/plain`` is a page with the plain ``<script>`` tag instead of the
middleware. ``--ready-delay S``: serve at once, but send READY=1 only S seconds later; ``--start-delay S``:
wait S seconds before serving at all.
Every request appends "time generation path early|ready" to requests.txt; READY=1 appends
"time generation READY" to the same file, and the start of the accept loop "time generation
SERVING".
"""

import os
import socketserver
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

sys.path.insert(0, os.getcwd())
import view  # a syntax error here is what the tests are about

import reloadkit
from reloadkit.middleware import LiveReloadMiddleware

GENERATION = os.environ.get("RELOADKIT_GENERATION", "")
ready = threading.Event()
lock = threading.Lock()


def record(text: str) -> None:
    with lock, open("requests.txt", "a") as handle:
        handle.write(f"{time.time():.6f} {GENERATION} {text}\n")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    state = "ready" if ready.is_set() else "early"
    record(f"{path} {state}")
    if path.startswith("/static/"):
        name = os.path.join("static", os.path.basename(path))
        try:
            with open(name, "rb") as handle:
                body = handle.read()
        except OSError:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such file"]
        kind = "text/css" if name.endswith(".css") else "application/javascript"
        start_response("200 OK", [("Content-Type", kind), ("Cache-Control", "no-cache"), ("Content-Length", str(len(body)))])
        return [body]
    page = (f'<!DOCTYPE html><html><head><title>webapp</title><link rel="stylesheet" href="/static/style.css"></head>'
            f'<body><h1 id="text">{view.TEXT}</h1><p id="generation">{GENERATION}</p><p id="pid">{os.getpid()}</p>'
            f'<p id="state">{state}</p></body></html>').encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))])
    return [page]


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = Server(("127.0.0.1", 0), Quiet, bind_and_activate=False)
server.socket.close()
server.socket = reloadkit.sockets()[0]
server.server_name, server.server_port = "127.0.0.1", server.socket.getsockname()[1]
server.setup_environ()
wrapped = LiveReloadMiddleware(app)


def dispatch(environ, start_response):
    """/plain: a page with the documented plain tag, without the middleware."""
    if environ.get("PATH_INFO") != "/plain":
        return wrapped(environ, start_response)
    record("/plain")
    port = os.environ["RELOADKIT_LIVERELOAD_URL"].rpartition(":")[2]
    page = (f'<!DOCTYPE html><html><body><h1 id="text">{view.TEXT}</h1>'
            f'<script src="http://127.0.0.1:{port}/reloadkit/livereload.js" async></script></body></html>').encode()
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(page)))])
    return [page]


server.set_app(dispatch)


def announce():
    delay = float(sys.argv[sys.argv.index("--ready-delay") + 1]) if "--ready-delay" in sys.argv else 0.0
    time.sleep(delay)
    ready.set()
    record("READY")
    reloadkit.notify_ready()


if "--start-delay" in sys.argv:  # a slow start: the socket is not served for this long
    time.sleep(float(sys.argv[sys.argv.index("--start-delay") + 1]))
threading.Thread(target=announce, daemon=True).start()
print(f"webapp generation {GENERATION} serving", file=sys.stderr, flush=True)
record("SERVING")  # from now on it accepts: what reloadkit's readiness probe sees
server.serve_forever()
