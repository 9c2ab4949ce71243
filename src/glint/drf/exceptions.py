"""How the API says the domain errors services raise (``glint.errors``).

DRF's own handler does the rest; this only turns :class:`glint.errors.NotFound` into the 404 with
its message that ``Http404`` used to give, so a service need not know it is called by the API.
"""

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from glint.errors import NotFound

__all__ = ["exception_handler"]


def exception_handler(exc, context):
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: domain errors first, then DRF's handler."""
    if isinstance(exc, NotFound):
        exc = exceptions.NotFound(exc.message)
    return drf_exception_handler(exc, context)
