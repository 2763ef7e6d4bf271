"""waitress.serve(app, port=PORT)."""

import sys

from waitress import serve
from wsgi_app import app

if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(sys.argv[1]))
