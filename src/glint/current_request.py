"""The request being served, for code far from the view: its id (logs, audit) and the request.

Plain context variables (no Django), so the audit trail and logging can read them without
importing the web face; ``glint.web.request_context.RequestContextMiddleware`` sets them for
every request. cheroot serves each request on one thread, so a ``ContextVar`` holds it.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["current_request", "current_request_id", "request_id_var", "request_var"]

request_var = ContextVar("glint_request", default=None)
request_id_var = ContextVar("glint_request_id", default="")


def current_request():
    """The request this thread is serving, or None (command line, background workers)."""
    return request_var.get()


def current_request_id() -> str:
    return request_id_var.get()
