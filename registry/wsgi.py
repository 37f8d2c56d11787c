"""WSGI entry point: ``registry.wsgi:application``."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

django_application = get_wsgi_application()

from swr.middleware import ChunkedBodyMiddleware  # noqa: E402 (imported once Django is set up)

# Bodies sent with Transfer-Encoding: chunked are read like any other, up to the body size limit (spec section 1).
application = ChunkedBodyMiddleware(django_application, limit=settings.SWR_MAX_BODY_BYTES)

# Import the URLconf, and with it the views, now rather than in the first request: a server that
# loads the application before forking its workers (gunicorn.conf.py) then hands it to all of them.
import_module(settings.ROOT_URLCONF)
