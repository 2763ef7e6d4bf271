"""An ASGI app (with lifespan) for uvicorn, hypercorn and daphne."""

import asyncio
import json
import os

from version import VERSION


async def app(scope, receive, send):
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
    if scope["path"] == "/stream":  # a response in several writes: Nagle's algorithm shows here
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (VERSION.encode(), b" ", b"streamed"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/slow":  # a request under way for 50 ms
        await asyncio.sleep(0.05)
    if scope["path"] == "/upload":  # reads the whole body, answers its size
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = f"{VERSION} {size}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"] == "/info":
        client = scope.get("client")
        body = json.dumps({
            "version": VERSION,
            "pid": os.getpid(),
            "generation": os.environ.get("RELOADKIT_GENERATION"),
            "client": list(client) if client else None,
        }).encode()
    else:
        body = VERSION.encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


application = app
