"""A demo server on the standard library alone.

Under reloadkit: ``reloadkit run -b 127.0.0.1:8000 -- python -m reloadkit.demo``; on its own,
``python -m reloadkit.demo`` reloads itself (``run_simple`` with the reloader). It says which
generation answers, tells the supervisor when it is ready, and finishes requests in flight
when asked to stop.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from typing import Any

from . import is_child
from .wsgi import run_simple

__all__ = ["GREETING", "application", "main"]

#: Change this line and save: the next request is answered by a new generation saying so.
GREETING = "Hello from reloadkit's demo"

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>reloadkit demo</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>{greeting}</h1>
<p>Served by pid {pid}, generation {generation}.</p>
<p>To see a reload, edit the <code>GREETING</code> line of <code>{source}</code>, save,
and reload this page: a new generation answers with your text, and no request is refused
while it starts. Ctrl+C in the terminal stops reloadkit and the server.</p>
</body></html>
"""


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _PAGE.format(
        greeting=html.escape(GREETING, quote=False),
        pid=os.getpid(),
        generation=html.escape(os.environ.get("RELOADKIT_GENERATION", "?")),
        source=html.escape(os.path.abspath(__file__)),
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    under_reloadkit = is_child() or "LISTEN_FDS" in os.environ
    run_simple("127.0.0.1", 8000, application, threaded=True, use_reloader=not under_reloadkit)


if __name__ == "__main__":
    main()
