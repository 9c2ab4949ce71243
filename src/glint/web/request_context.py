"""The request being served, for code far from the view: its id (logs, audit) and its person (audit).

Every request gets an id: the ``X-Request-ID`` a trusted reverse proxy sent (so one id follows a
request through nginx/Apache and Glint), or a new random one. It is returned in the response's
``X-Request-ID`` header, added to every log line written while the request is served, and stored
in audit records. cheroot serves each request on one thread, so a ``ContextVar`` holds it.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from django.conf import settings

from glint.accounts.identity import is_trusted_proxy

__all__ = ["RequestContextMiddleware", "RequestIdLogFilter", "current_request", "current_request_id"]

HEADER = "X-Request-ID"
#: What a proxy-supplied id may look like: short and printable, so it is safe in logs and headers.
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_request = ContextVar("glint_request", default=None)
_request_id = ContextVar("glint_request_id", default="")


def current_request():
    """The request this thread is serving, or None (command line, background workers)."""
    return _request.get()


def current_request_id() -> str:
    return _request_id.get()


def _request_id_for(request) -> str:
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    if offered and ACCEPTED_ID.match(offered) and is_trusted_proxy(request.META, settings.GLINT_TRUSTED_PROXIES):
        return offered
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """First in the chain: everything after it (identity, views, audit) sees the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = _request_id_for(request)
        request_token = _request.set(request)
        id_token = _request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(request_token)
            _request_id.reset(id_token)
        response[HEADER] = request.request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Gives every log record a ``request_id`` (``-`` outside a request) for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True
