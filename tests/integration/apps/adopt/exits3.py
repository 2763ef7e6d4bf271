"""A server that binds its own port and, when the port is taken, exits with status 3 (as
Datasette does under uvicorn): a restart request, not a crash. Its stop is graceful and takes
a moment, as uvicorn's does: the port stays taken meanwhile."""

import signal
import sys
import time
from http.server import HTTPServer

from serve_http import Handler


def _graceful(number, frame):
    time.sleep(0.5)  # the thing under test: a graceful stop that keeps the port a moment
    sys.exit(0)


if __name__ == "__main__":
    try:
        server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    except OSError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, _graceful)
    server.serve_forever()
