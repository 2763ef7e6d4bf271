"""Flask's app.run(port=PORT), as the tutorial has it."""

import sys

from flask import Flask
from version import VERSION

app = Flask(__name__)


@app.route("/")
def index():
    return VERSION, 200, {"Content-Type": "text/plain"}


if __name__ == "__main__":
    app.run(port=int(sys.argv[1]))
