"""Errors that Glint's services raise and its faces translate (no Django here).

A service says what went wrong in the domain's words; the face that called it decides how to say
it: a page answers 404, the API answers 404 with the message (``glint.web.errors`` and
``glint.drf.exceptions``). The common root of every Glint error family is added on the engine's
branch; :class:`NotFound` is meant to sit under it.
"""

from __future__ import annotations

__all__ = ["NotFound"]


class NotFound(LookupError):
    """What was asked for does not exist, or the asker may not see it (the same answer for both,
    so nobody learns what another group holds).

    Attributes:
        message: Safe to show a person.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
