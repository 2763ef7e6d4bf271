"""tornado's app.listen(PORT), as its front page has it."""

import asyncio
import sys

import tornado.web
from version import VERSION


class Index(tornado.web.RequestHandler):
    def get(self):
        self.write(VERSION)


async def main():
    app = tornado.web.Application([(r"/", Index)])
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
