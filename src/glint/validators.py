"""Names and properties people give Glint: text that cannot disguise itself or other text.

A control character (C0, DEL, C1) in an image name breaks a terminal table or a log line in two
(``glint images`` printed a CR/LF name as a forged row); a bidirectional override or isolate
shows a name reversed (``gpj.exe`` as ``exe.jpg``); a lone surrogate is not text at all (no
database or JSON encoder takes it). Every entry point that takes a name of an image, repo or
group, or an image property, refuses them with :func:`text_problem`'s reason: the API with a
400, the pages with a form error, the command line with its message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError

__all__ = [
    "SITE_NAME_PATTERN",
    "check_properties",
    "text_problem",
    "unsafe_kind",
    "validate_site_name",
    "validate_text",
]

#: Bidirectional embeddings and overrides (U+202A–U+202E) and isolates (U+2066–U+2069).
_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))


def unsafe_kind(char: str) -> str | None:
    """What makes one character unsafe in a name ("a control character", …), or None."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "a control character"
    if code in _BIDI_CONTROLS:
        return "a bidirectional control character"
    if 0xD800 <= code <= 0xDFFF:  # a str holds a surrogate only when it has no partner
        return "a lone surrogate"
    return None


def text_problem(value: str, what: str = "The name") -> str | None:
    """Why ``value`` may not be used, or None.

    Args:
        value: The text.
        what: How the message names it ("The name", "Property key 'os_distro'").

    Returns:
        ``"The name holds a control character (U+000A) at character 7; …"``: the message never
        repeats the offending text itself.
    """
    for position, char in enumerate(value, start=1):
        kind = unsafe_kind(char)
        if kind:
            return (
                f"{what} holds {kind} (U+{ord(char):04X}) at character {position}; names and "
                f"properties may not hold control characters, bidirectional overrides or "
                f"lone surrogates"
            )
    return None


def validate_text(value: str) -> None:
    """A Django validator (forms, serializers, model fields) of :func:`text_problem`.

    Raises:
        ValidationError: With the reason, code ``unsafe_text``.
    """
    problem = text_problem(value)
    if problem:
        raise ValidationError(problem, code="unsafe_text")


def check_properties(properties: Mapping[str, object]) -> str | None:
    """:func:`text_problem` of each key and value of an image's properties: the first reason, or
    None. A key is named by its ``repr`` (which escapes whatever makes it unsafe)."""
    for key, value in properties.items():
        key = str(key)
        problem = text_problem(key, "A property key") or text_problem(
            str(value), f"Property {key!r}"
        )
        if problem:
            return problem
    return None


#: A site's name: it names the Celery queue of the site's jobs (``glint.site.NAME``) and is typed
#: as ``glint worker --site NAME``, so it is kept to letters, digits, dots, dashes and underscores.
SITE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")


def validate_site_name(value: str) -> None:
    """A Django validator of a site's name (see :data:`SITE_NAME_PATTERN`); empty means no site.

    Raises:
        ValidationError: With the reason, code ``invalid_site``.
    """
    if value and not SITE_NAME_PATTERN.fullmatch(value):
        raise ValidationError(
            "A site is up to 50 letters, digits, dots, dashes and underscores, starting with a "
            "letter or digit (it names the queue of the site's workers).",
            code="invalid_site",
        )
