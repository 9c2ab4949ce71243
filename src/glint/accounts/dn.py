"""Distinguished names: one unambiguous key per person (research/x509.md §3, issue 12).

Grid software compares DNs exactly, so Glint stores every DN as one canonical string, and two
subjects get the same string only if they are the same sequence of RDNs.

**The canonical form** is OpenSSL's slash form with every special character escaped:

- the RDNs in ASN.1 order (most general first), each after a ``/``;
- OpenSSL's short attribute names (``C``, ``O``, ``OU``, ``CN``, ``DC``, ``UID``,
  ``emailAddress``…), or the dotted OID for any other attribute;
- the AVAs of a multi-valued RDN sorted and joined with ``+``;
- values as Unicode, never case-folded, with a backslash before ``\\``, ``/`` and ``+`` (and before
  a leading ``#``), and control, format and line-separator characters (C0, DEL, C1, bidirectional
  overrides, zero-width characters…) and a trailing space written as ``\\xHH`` UTF-8 byte escapes;
- a BIT STRING value (``x500UniqueIdentifier``) as ``#`` and its bytes in hex (so a text value
  starting with ``#`` has it escaped, ``\\#``).

So ``O=Test Grid/OU=Admins`` (one RDN) is ``/O=Test Grid\\/OU=Admins`` and never ``/O=Test
Grid/OU=Admins`` (two), a CN holding ``+UID=jd`` is ``CN=…\\+UID=jd`` and never the multi-valued
RDN ``CN=…+UID=jd``, and a host certificate is ``/CN=host\\/node.example.org``. A DN without any of
these characters reads exactly as OpenSSL prints it (``/C=CA/O=Grid/CN=Jane Doe``), and the form is
also valid input, so a stored DN can be pasted back anywhere Glint takes one.

**Length.** A canonical DN has at most ``MAX_DN_LENGTH`` (1,024) characters, checked here for every
DN whatever it came from (a certificate, a proxy header, the command line, the API, a page). Real
subjects are far shorter: RFC 5280 bounds CN, O and OU at 64 characters each, and IGTF DNs stay
under 256. The database columns are exactly this wide.

**Input** (``canonical_from_string``), told apart by the first character:

- ``/…``: the slash form with OpenSSL ``-subj`` escaping: ``\\`` escapes the next character
  (``\\/``, ``\\+``, ``\\,``, ``\\\\``), ``+`` joins the AVAs of a multi-valued RDN, and ``\\xHH``
  runs are UTF-8 bytes (as ``openssl x509 -nameopt compat`` and nginx print non-ASCII). A ``/`` or
  ``+`` that is not followed by an attribute name and ``=`` cannot start an RDN, so it stays in the
  value: ``/CN=host/node.example.org`` is one CN. A value of ``#`` and hex digits only is binary,
  as stored (write ``\\#`` for such text).
- anything else: RFC 4514 (or RFC 2253) comma form, most specific RDN first, with ``\\,``-style and
  ``\\HH`` escapes and RFC 2253 quoted values.

**Refused as ambiguous**, with a message saying what to write instead, rather than read one way:

- a ``/`` or ``+`` followed by a name and ``=`` that is not an attribute Glint knows, or with
  spaces around it (``/CN=host/x=1``, ``/CN=a+ UID=b``): a misspelt attribute, or part of the
  value?
- in comma form, spaces around ``=`` (``C = CA, O = Grid``: OpenSSL's one-line output, which lists
  the RDNs in the opposite order), an unescaped ``;`` (a separator in RFC 2253, not in RFC 4514),
  and a stray ``"``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

__all__ = [
    "MAX_DN_LENGTH",
    "DNError",
    "canonical_from_name",
    "canonical_from_rdns",
    "canonical_from_string",
    "display_from_canonical",
    "rdns_from_canonical",
]

MAX_DN_LENGTH = 1024

SHORT_NAMES: dict[ObjectIdentifier, str] = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.STREET_ADDRESS: "street",
    NameOID.TITLE: "title",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.DN_QUALIFIER: "dnQualifier",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
}

# Spellings seen in the wild for the same attribute, upper-cased, mapped to the short name.
ALIASES: dict[str, str] = {name.upper(): name for name in SHORT_NAMES.values()}
ALIASES.update(
    {
        "E": "emailAddress",
        "EMAIL": "emailAddress",
        "USERID": "UID",
        "DOMAINCOMPONENT": "DC",
        "COMMONNAME": "CN",
        "COUNTRYNAME": "C",
        "ORGANIZATIONNAME": "O",
        "ORGANIZATIONALUNITNAME": "OU",
        "LOCALITYNAME": "L",
        "STATEORPROVINCENAME": "ST",
        "S": "ST",
    }
)

Value = str | bytes
AVA = tuple[str, Value]
RDN = tuple[AVA, ...]

_TYPE_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_SLASH_BYTES = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_RFC_BYTES = re.compile(r"(?:\\[0-9A-Fa-f]{2})+")
_INVISIBLE = (
    "Cc",
    "Cf",
    "Zl",
    "Zp",
)  # control, format (bidi, zero-width), line/paragraph separators


class DNError(ValueError):
    """A DN string could not be read, or could be read more than one way; the message says where."""


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short when it is long."""
    return repr(text) if len(text) <= 120 else f"{text[:100]!r}… ({len(text):,} characters)"


# Canonical form ----------------------------------------------------------------------------------


def _byte_escapes(char: str, prefix: str) -> str:
    return "".join(f"{prefix}{byte:02X}" for byte in char.encode("utf-8"))


def _check_unicode(value: str) -> None:
    if any("\ud800" <= char <= "\udfff" for char in value):
        raise DNError(f"the value {_shown(value)} is not valid Unicode (it holds a lone surrogate)")


def _escape_canonical(value: Value) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    _check_unicode(value)
    out = []
    for char in value:
        if char in "\\/+":
            out.append("\\" + char)
        elif unicodedata.category(char) in _INVISIBLE:
            out.append(_byte_escapes(char, "\\x"))
        else:
            out.append(char)
    text = "".join(out)
    if value.startswith("#"):
        text = "\\" + text
    if value.endswith(" "):
        text = text[:-1] + "\\x20"
    return text


def canonical_from_rdns(rdns: Iterable[Iterable[AVA]]) -> str:
    """The canonical string of an RDN sequence given as (short name, value) pairs.

    Raises:
        DNError: the sequence is empty, or its canonical form is longer than ``MAX_DN_LENGTH``.
    """
    parts = []
    for rdn in rdns:
        avas = sorted((name, _escape_canonical(value)) for name, value in rdn)
        if not avas:
            raise DNError("the DN has an empty RDN")
        parts.append("/" + "+".join(f"{name}={value}" for name, value in avas))
    if not parts:
        raise DNError("the DN is empty")
    canonical = "".join(parts)
    if len(canonical) > MAX_DN_LENGTH:
        raise DNError(
            f"the DN is {len(canonical):,} characters long; "
            f"Glint accepts at most {MAX_DN_LENGTH:,}, "
            f"more than any certificate subject needs ({canonical[:80]}…)"
        )
    return canonical


def canonical_from_name(name: x509.Name) -> str:
    """Canonical form of a certificate's subject or issuer.

    Raises:
        DNError: the name is empty, too long, or holds text that is not valid Unicode.
    """
    return canonical_from_rdns(
        [(SHORT_NAMES.get(ava.oid, ava.oid.dotted_string), ava.value) for ava in rdn]
        for rdn in name.rdns
    )


# Reading text ------------------------------------------------------------------------------------

# A token is one character of the input and whether it was escaped (so it is never a separator).
Token = tuple[str, bool]


def _tokens(text: str, byte_escapes: re.Pattern[str], *, quotes: bool = False) -> list[Token]:
    """The characters of ``text`` with their escapes resolved; byte-escape runs decoded as UTF-8.

    With ``quotes``, characters between unescaped double quotes count as escaped too (RFC 2253
    quoted values); the quotes themselves stay unescaped tokens.
    """
    tokens: list[Token] = []
    index, quoted = 0, False
    while index < len(text):
        char = text[index]
        if char == "\\":
            run = byte_escapes.match(text, index)
            if run:
                raw = bytes(int(pair, 16) for pair in re.findall(r"[0-9A-Fa-f]{2}", run.group(0)))
                try:
                    decoded = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DNError(
                        f"the byte escapes {_shown(run.group(0))} in DN {_shown(text)} "
                        f"are not valid UTF-8"
                    ) from None
                tokens.extend((decoded_char, True) for decoded_char in decoded)
                index = run.end()
                continue
            if index + 1 == len(text):
                raise DNError(f"DN {_shown(text)} ends with a lone backslash")
            tokens.append((text[index + 1], True))
            index += 2
            continue
        if quotes and char == '"':
            quoted = not quoted
            tokens.append((char, False))
        else:
            tokens.append((char, quoted))
        index += 1
    if quoted:
        raise DNError(f"DN {_shown(text)} has an unclosed double quote")
    return tokens


def _strip(tokens: list[Token]) -> list[Token]:
    """Without unescaped white space at either end."""
    start, end = 0, len(tokens)
    while start < end and not tokens[start][1] and tokens[start][0].isspace():
        start += 1
    while end > start and not tokens[end - 1][1] and tokens[end - 1][0].isspace():
        end -= 1
    return tokens[start:end]


def _text(tokens: list[Token]) -> str:
    return "".join(char for char, _escaped in tokens)


def _attribute(name: str, whole: str) -> str:
    if _DOTTED.fullmatch(name):
        return name
    short = ALIASES.get(name.upper())
    if short is None:
        raise DNError(f"unknown attribute type {_shown(name)} in DN {_shown(whole)}")
    return short


def _known(name: str) -> bool:
    return bool(_DOTTED.fullmatch(name)) or name.upper() in ALIASES


def _type_ahead(tokens: list[Token], index: int) -> tuple[str, int, bool] | None:
    """If ``tokens[index:]`` reads ``NAME=`` (maybe with spaces around NAME): (NAME, index after
    '=', spaced)."""
    position, spaced = index, False
    while position < len(tokens) and tokens[position] == (" ", False):
        position, spaced = position + 1, True
    start = position
    while (
        position < len(tokens)
        and not tokens[position][1]
        and (
            tokens[position][0].isascii()
            and (tokens[position][0].isalnum() or tokens[position][0] in ".-")
        )
    ):
        position += 1
    name = _text(tokens[start:position])
    while position < len(tokens) and tokens[position] == (" ", False):
        position, spaced = position + 1, True
    if position < len(tokens) and tokens[position] == ("=", False) and _TYPE_SHAPE.fullmatch(name):
        return name, position + 1, spaced
    return None


def _slash_value(tokens: list[Token]) -> Value:
    """A value; an unescaped ``#`` and nothing but pairs of hex digits is a binary value (as
    stored)."""
    if (
        len(tokens) > 2
        and tokens[0] == ("#", False)
        and not any(escaped for _char, escaped in tokens)
    ):
        digits = _text(tokens[1:])
        if _HEX.fullmatch(digits):
            return bytes.fromhex(digits)
    return _text(tokens)


def _parse_slash(text: str) -> list[list[AVA]]:
    tokens = _strip(_tokens(text, _SLASH_BYTES))
    if not tokens or tokens[0] != ("/", False):
        raise DNError(f"DN {_shown(text)} does not start with '/'")
    first = _type_ahead(tokens, 1)
    if first is None or first[2]:
        raise DNError(f"{_shown(_text(tokens[1:]))} in DN {_shown(text)} is not TYPE=value")
    rdns: list[list[AVA]] = []
    avas: list[AVA] = []
    name, index = _attribute(first[0], text), first[1]
    value: list[Token] = []
    while index < len(tokens):
        char, escaped = tokens[index]
        if escaped or char not in "/+":
            value.append(tokens[index])
            index += 1
            continue
        if char == "/" and (index + 1 == len(tokens) or tokens[index + 1] == ("/", False)):
            raise DNError(
                f"DN {_shown(text)} has an empty RDN (a '/' with nothing after it); "
                f"write '\\/' for a '/' in a value"
            )
        ahead = _type_ahead(tokens, index + 1)
        if (
            ahead is None
        ):  # cannot start an RDN or AVA: part of the value (CN=host/node.example.org)
            value.append(tokens[index])
            index += 1
            continue
        following, after, spaced = ahead
        if spaced or not _known(following):
            what = "a new RDN" if char == "/" else "another AVA of this RDN"
            raise DNError(
                f"DN {_shown(text)} is ambiguous: {_shown(_text(tokens[index:after]))} "
                f"may start {what} or belong to the {name} value; write '\\{char}' if the "
                f"'{char}' is part of the value, or a known attribute type without spaces if "
                f"it is not"
            )
        avas.append((name, _slash_value(value)))
        if char == "/":
            rdns.append(avas)
            avas = []
        name, index, value = _attribute(following, text), after, []
    avas.append((name, _slash_value(value)))
    rdns.append(avas)
    return rdns


def _split(tokens: list[Token], separator: str) -> list[list[Token]]:
    pieces: list[list[Token]] = [[]]
    for token in tokens:
        if token == (separator, False):
            pieces.append([])
        else:
            pieces[-1].append(token)
    return pieces


def _rfc_value(tokens: list[Token], whole: str) -> str:
    tokens = _strip(tokens)
    if len(tokens) >= 2 and tokens[0] == ('"', False) and tokens[-1] == ('"', False):
        tokens = tokens[1:-1]
    if ('"', False) in tokens:
        raise DNError(f"DN {_shown(whole)} has a stray '\"' in a value; write '\\\"'")
    if tokens and tokens[0] == ("#", False):
        raise DNError(
            f"DN {_shown(whole)} has a BER-encoded (#…) value, which Glint does not read; "
            f"give the value as text"
        )
    return _text(tokens)


def _parse_rfc4514(text: str) -> list[list[AVA]]:
    tokens = _strip(_tokens(text, _RFC_BYTES, quotes=True))
    if (";", False) in tokens:
        raise DNError(
            f"DN {_shown(text)} is ambiguous: ';' separates RDNs in RFC 2253 but not in RFC 4514; "
            f"use ',' between RDNs, or write '\\;' for a ';' in a value"
        )
    rdns = []
    for rdn in _split(tokens, ","):
        if not _strip(rdn):
            raise DNError(f"DN {_shown(text)} has an empty component")
        avas = []
        for ava in _split(rdn, "+"):
            if ("=", False) not in ava:
                raise DNError(
                    f"{_shown(_text(_strip(ava)))} in DN {_shown(text)} is not TYPE=value"
                )
            equals = ava.index(("=", False))
            name_tokens, value_tokens = ava[:equals], ava[equals + 1 :]
            name = _text(_strip(name_tokens))
            if (name_tokens and name_tokens[-1] == (" ", False)) or (
                value_tokens and value_tokens[0] == (" ", False)
            ):
                raise DNError(
                    f"DN {_shown(text)} has spaces around '=', as OpenSSL's one-line output does, "
                    f"which lists the RDNs in the opposite order of RFC 4514: give the DN in "
                    f"slash form (openssl x509 -noout -subject -nameopt compat) or RFC 4514 "
                    f"(-nameopt RFC2253)"
                )
            if not _TYPE_SHAPE.fullmatch(name):
                raise DNError(
                    f"{_shown(_text(_strip(ava)))} in DN {_shown(text)} is not TYPE=value"
                )
            avas.append((_attribute(name, text), _rfc_value(value_tokens, text)))
        rdns.append(avas)
    return list(reversed(rdns))  # RFC 4514 lists the most specific RDN first


def canonical_from_string(text: str) -> str:
    """Canonical form of a DN given as text: slash form (OpenSSL ``-subj``), or RFC 4514/2253 form.

    Raises:
        DNError: the text is empty, not a DN, ambiguous, or too long (the message says which).
    """
    text = text.strip()
    if not text:
        raise DNError("the DN is empty")
    rdns = _parse_slash(text) if text.startswith("/") else _parse_rfc4514(text)
    return canonical_from_rdns(rdns)


def rdns_from_canonical(canonical: str) -> list[RDN]:
    """The RDN sequence a canonical string stands for (the inverse of ``canonical_from_rdns``).

    Raises:
        DNError: ``canonical`` is not in canonical form.
    """
    rdns = _parse_slash(canonical)
    if canonical_from_rdns(rdns) != canonical:
        raise DNError(f"{_shown(canonical)} is not a canonical DN")
    return [tuple(sorted(rdn, key=lambda ava: (ava[0], _escape_canonical(ava[1])))) for rdn in rdns]


# Display -----------------------------------------------------------------------------------------


def _escape_rfc4514(value: Value) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    out = []
    for char in value:
        if char in ',+"\\<>;':
            out.append("\\" + char)
        elif unicodedata.category(char) in _INVISIBLE:
            out.append(_byte_escapes(char, "\\"))
        else:
            out.append(char)
    text = "".join(out)
    if value.startswith((" ", "#")):
        text = "\\" + text
    if value.endswith(" ") and len(value) > 1:
        text = text[:-1] + "\\ "
    return text


def display_from_canonical(canonical: str) -> str:
    """RFC 4514 rendering for people (most specific RDN first), from the canonical form.

    A stored string that is not in canonical form is shown as it is.
    """
    try:
        rdns = rdns_from_canonical(canonical)
    except DNError:
        return canonical
    return ",".join(
        "+".join(f"{name}={_escape_rfc4514(value)}" for name, value in rdn)
        for rdn in reversed(rdns)
    )
