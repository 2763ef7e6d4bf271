from waitress import serve
from wsgi_app import app

import reloadkit

serve(app, sockets=reloadkit.sockets())
