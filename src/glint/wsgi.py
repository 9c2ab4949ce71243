"""WSGI entry point, used by ``glint serve`` and by any other WSGI server."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "glint.settings")
application = get_wsgi_application()
