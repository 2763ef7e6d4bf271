"""run_simple given options that only ``reloadkit run`` could set before: warm, poll, live
reload, strict order, env files (``python options_app.py``).

Each answer says the version from views.py, the serving pid, GREETING (from .env) and the
live-reload URL reloadkit gave the child.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import views

import reloadkit


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    body = (
        f"{views.VERSION} pid={os.getpid()} greeting={os.environ.get('GREETING', '-')}"
        f" livereload={os.environ.get('RELOADKIT_LIVERELOAD_URL', '-')}"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    reloadkit.run_simple(
        "127.0.0.1",
        0,
        app,
        threaded=True,
        imports=False,  # watch the directory (by polling), as reloadkit run does
        poll=0.2,
        warm=True,
        livereload=True,
        strict_order=True,
        env_files=[".env"],
        verbosity=1,
    )
