"""aiohttp's web.run_app(app, port=PORT): every interface, IPv4 and IPv6."""

import sys

from aiohttp import web
from version import VERSION


async def index(request):
    return web.Response(text=VERSION)


app = web.Application()
app.router.add_get("/", index)

if __name__ == "__main__":
    web.run_app(app, port=int(sys.argv[1]), print=None)
