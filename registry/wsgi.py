"""WSGI entry point: ``registry.wsgi:application``."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

application = get_wsgi_application()

# Import the URLconf, and with it the views, now rather than in the first request: a server that
# loads the application before forking its workers (gunicorn.conf.py) then hands it to all of them.
import_module(settings.ROOT_URLCONF)
