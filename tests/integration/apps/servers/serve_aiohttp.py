"""aiohttp on reloadkit's socket: web.run_app(app, sock=reloadkit.sockets()[0])."""

import json
import os

from aiohttp import web
from version import VERSION

import reloadkit


async def index(request):
    return web.Response(text=VERSION)


async def info(request):
    return web.Response(text=json.dumps({
        "version": VERSION,
        "pid": os.getpid(),
        "generation": os.environ.get("RELOADKIT_GENERATION"),
        "client": request.remote,
    }))


app = web.Application()
app.router.add_get("/", index)
app.router.add_get("/info", info)

if __name__ == "__main__":
    web.run_app(app, sock=reloadkit.sockets()[0], print=None)
