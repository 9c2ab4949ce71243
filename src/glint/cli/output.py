"""What the command line prints of the server's text: never a raw control character.

A name from a cloud (or from a person, before Glint refused them) may hold a CR/LF, an escape
sequence or a bidirectional override; printed raw it forges a table row, rewrites the terminal
or shows a name reversed. Every value from the server passes :func:`shown` on its way out.
"""

from __future__ import annotations

from glint.validators import unsafe_kind

__all__ = ["shown"]


def shown(value: object) -> str:
    """``value`` as text safe for a terminal: each character Glint refuses in names (control,
    bidirectional, lone surrogate) as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    text = "" if value is None else str(value)
    return "".join(repr(char)[1:-1] if unsafe_kind(char) else char for char in text)
