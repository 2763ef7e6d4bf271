"""WSGI config: ``gunicorn mysite.wsgi`` (and what runserver serves)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()

from library.startup import record_start  # noqa: E402 - after django.setup()

record_start()
