"""A Flask app: `flask --app flask_app run [--debug]`, or `python flask_app.py` (app.run())."""

import json
import os
import sys

from flask import Flask, request
from version import VERSION

app = Flask(__name__)


@app.route("/")
def index():
    return VERSION, 200, {"Content-Type": "text/plain"}


@app.route("/info")
def info():
    return json.dumps({
        "version": VERSION,
        "pid": os.getpid(),
        "generation": os.environ.get("RELOADKIT_GENERATION"),
        "client": request.remote_addr,
    })


if __name__ == "__main__":
    # Under reloadkit the port is ignored: werkzeug adopts WERKZEUG_SERVER_FD.
    if "--werkzeug-reloader" in sys.argv:
        # debug=True turns werkzeug's reloader on: with WERKZEUG_RUN_MAIN=true it runs in this
        # process (no second interpreter) and exits with status 3 when a watched file changes.
        app.run(port=5000, debug=True, reloader_type="stat", extra_files=["data.txt"])
    else:
        app.run(port=5000)
