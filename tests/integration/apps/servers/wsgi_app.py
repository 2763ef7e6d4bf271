"""A WSGI app for gunicorn and waitress."""

import json
import os

from version import VERSION


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/info":
        body = json.dumps({
            "version": VERSION,
            "pid": os.getpid(),
            "generation": os.environ.get("RELOADKIT_GENERATION"),
            "client": environ.get("REMOTE_ADDR"),
        }).encode()
    else:
        body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app
