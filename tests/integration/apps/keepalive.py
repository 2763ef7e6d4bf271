"""An HTTP/1.1 server with keep-alive on the inherited socket that answers VERSION from
./version.py, and when told to stop (SIGTERM) stops accepting, answers the next request on
each open connection with ``Connection: close`` and leaves once none is open. --abrupt: die
on SIGTERM at once instead (the default action), as werkzeug's and waitress's servers do.
"""

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.getcwd())
from version import VERSION

import reloadkit

stopping = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = reloadkit.sockets()[0]
server.daemon_threads = False
server.block_on_close = True
if "--abrupt" not in sys.argv:
    signal.signal(signal.SIGTERM, lambda _n, _f: (stopping.set(), threading.Thread(target=server.shutdown).start()))
server.serve_forever(poll_interval=0.05)
server.server_close()  # joins the connection threads: each ends after its "Connection: close"
