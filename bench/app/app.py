"""The benchmark's WSGI app: answers every request with the version string.

``python app.py``            werkzeug's server, no reloader (binds BENCH_PORT, or serves the
                             socket a supervisor passed as fd 3); used by reloadkit, hupper
                             (``hupper -m app``) and the watchfiles CLI.
``python app.py stat``       werkzeug's own reloader, stat backend.
``python app.py watchdog``   werkzeug's own reloader, watchdog backend.
``python app.py reloadkit``  reloadkit's own development server (``reloadkit.run_simple``),
                             which finishes the requests in flight when told to stop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

import benchsupport
from version import VERSION

try:  # the burst phase of the benchmark adds this package
    import mods  # noqa: F401
except ImportError:
    pass


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    from werkzeug.serving import make_server, run_simple

    port = int(os.environ.get("BENCH_PORT", "8000"))
    mode = sys.argv[1] if len(sys.argv) > 1 else "plain"
    try:
        if mode in ("stat", "watchdog"):
            if os.environ.get("WERKZEUG_RUN_MAIN") == "true":  # the serving child
                benchsupport.started()
            run_simple("127.0.0.1", port, app, threaded=True, use_reloader=True, reloader_type=mode)
            return
        if mode == "reloadkit":
            import reloadkit

            benchsupport.started()
            reloadkit.run_simple("127.0.0.1", port, app, use_reloader=False, threaded=True)  # sends READY=1
            return
        server = make_server("127.0.0.1", port, app, threaded=True, fd=benchsupport.inherited_fd())
        benchsupport.started()
        benchsupport.notify_ready()
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
