"""run_simple serving a WSGI app: ``python webapp.py MODE``, MODE one of threaded/processes/werkzeug.

``/slow`` takes SLOW_SECONDS (printing START first, so a test knows it is in flight);
every answer says the version from views.py, the serving pid and the WSGI flags.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable

import views

import reloadkit

SLOW_SECONDS = 0.8


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/slow":
        os.write(1, f"START {os.getpid()}\n".encode())  # one write: threads and processes print at once
        time.sleep(SLOW_SECONDS)
    version = views.VERSION
    if environ["PATH_INFO"] == "/lazy":
        import ignored_settings  # excluded by exclude_patterns: never watched

        version = f"{version}+{ignored_settings.VALUE}"
    body = (
        f"{version} pid={os.getpid()} multithread={environ['wsgi.multithread']}"
        f" multiprocess={environ['wsgi.multiprocess']}"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "werkzeug":
        reloadkit.run_simple(
            "127.0.0.1",
            0,
            app,
            use_reloader=True,
            use_debugger=False,
            use_evalex=True,
            extra_files=["settings.txt"],
            exclude_patterns=["*/ignored_*.py"],
            reloader_interval=0.2,
            reloader_type="stat",
            threaded=False,
            processes=1,
            request_handler=None,
            static_files={"/static": "static"},
            passthrough_errors=False,
            ssl_context=None,
            verbosity=1,  # reloadkit's own: the test's notify barrier needs the debug lines
        )
    else:
        reloadkit.run_simple(
            "127.0.0.1", 0, app, threaded=mode == "threaded", processes=4 if mode == "processes" else 1
        )
