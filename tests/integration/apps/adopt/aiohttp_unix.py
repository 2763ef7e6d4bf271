"""aiohttp's web.run_app(app, path=PATH): a Unix socket (asyncio removes the file before it binds)."""

import sys

from aiohttp import web
from version import VERSION


async def index(request):
    return web.Response(text=VERSION)


app = web.Application()
app.router.add_get("/", index)

if __name__ == "__main__":
    web.run_app(app, path=sys.argv[1], print=None)
