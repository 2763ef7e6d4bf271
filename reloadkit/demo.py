"""A demo server on the standard library alone.

Under reloadkit: ``reloadkit run -b 127.0.0.1:8000 -- python -m reloadkit.demo``; on its own,
``python -m reloadkit.demo`` reloads itself (``run_simple`` with the reloader). It says which
generation answers, tells the supervisor when it is ready, and finishes requests in flight
when asked to stop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from . import is_child
from .wsgi import run_simple

__all__ = ["application", "main"]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = (
        f"Hello from reloadkit's demo: pid {os.getpid()}, "
        f"generation {os.environ.get('RELOADKIT_GENERATION', '?')}\n"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    under_reloadkit = is_child() or "LISTEN_FDS" in os.environ
    run_simple("127.0.0.1", 8000, application, threaded=True, use_reloader=not under_reloadkit)


if __name__ == "__main__":
    main()
