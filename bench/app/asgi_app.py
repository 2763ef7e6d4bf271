"""The benchmark's ASGI app for ``uvicorn --reload``: the same answer as app.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import benchsupport
from version import VERSION

try:  # the burst phase of the benchmark adds this package
    import mods  # noqa: F401
except ImportError:
    pass

benchsupport.started()

Message = dict[str, Any]


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = VERSION.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
