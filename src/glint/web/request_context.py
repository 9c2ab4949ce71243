"""The request being served, for code far from the view: its id (logs, audit) and its person
(audit).

Every request gets an id: the ``X-Request-ID`` a trusted reverse proxy sent (so one id follows a
request through nginx/Apache and Glint), or a new random one. It is returned in the response's
``X-Request-ID`` header, added to every log line written while the request is served, and stored
in audit records. The context variables themselves are ``glint.current_request``'s, so code below
the web face can read them.
"""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings

from glint.accounts.identity import is_trusted_proxy
from glint.current_request import current_request, current_request_id
from glint.current_request import request_id_var as _request_id
from glint.current_request import request_var as _request

__all__ = [
    "RequestContextMiddleware",
    "RequestIdLogFilter",
    "current_request",
    "current_request_id",
]

HEADER = "X-Request-ID"
#: What a proxy-supplied id may look like: short and printable, so it is safe in logs and headers.
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id_for(request) -> str:
    offered = request.META.get("HTTP_X_REQUEST_ID", "")
    if (
        offered
        and ACCEPTED_ID.match(offered)
        and is_trusted_proxy(request.META, settings.GLINT_TRUSTED_PROXIES)
    ):
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
