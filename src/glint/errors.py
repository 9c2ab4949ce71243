"""The root of every error Glint raises on purpose, in every layer.

Each family sits under :class:`GlintError`: the drivers' (``glint.clouds.errors``), the
engine's (``glint.replication.errors``) and the transfers' (``glint.transfers.errors``, under the
drivers' because an upload's bytes reach the engine as a copy's source). So a job, the API or
the command line reads the same three things from any of them, without telling them apart.

This module imports nothing of Glint and no Django, so every layer may import it: it is the one
module above the cloud drivers that they may import.

Services raise the domain's errors (:class:`NotFound`, ...) in the domain's words; the face that
called them decides how to say it: a page answers 404, the API answers 404 with the message
(``glint.web.errors`` and ``glint.drf.exceptions``).
"""

from __future__ import annotations

__all__ = ["GlintError", "NotFound", "internal_error_message"]


class GlintError(Exception):
    """Base of every error Glint raises on purpose.

    Attributes:
        code: A stable machine-readable identifier (stored with failed jobs, shown in the API).
        retryable: Whether trying the same operation again later may succeed.
        message: What went wrong, written for the person who has to act on it; never a secret.
    """

    code = "error"
    retryable = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def internal_error_message(exc: BaseException) -> str:
    """What people are told of an unexpected failure: its type only. The details may hold
    anything (a secret, a path), so they go to the server log, never into a message shown."""
    return f"internal error ({type(exc).__name__}); see the server log"


class NotFound(GlintError, LookupError):
    """What was asked for does not exist, or the asker may not see it (the same answer for both,
    so nobody learns what another group holds)."""

    code = "not_found"
