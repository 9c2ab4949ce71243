"""Distinguished names in one canonical form (research/x509.md §3).

Grid software compares DNs exactly, so Glint stores every DN as a canonical OpenSSL slash string:
ASN.1 order, OpenSSL short attribute names, Unicode values (no case folding), and the AVAs of a
multi-valued RDN sorted. The same certificate reaches Glint as a chain (direct TLS), a PEM header
(nginx, Apache) or a DN string in slash or RFC 2253/4514 form; all of them map to one key here.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

__all__ = ["DNError", "canonical_from_name", "canonical_from_string", "display_from_canonical"]

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


class DNError(ValueError):
    """A DN string could not be parsed; the message says where."""


def _rdn_text(avas: list[tuple[str, str]]) -> str:
    return "+".join(f"{name}={value}" for name, value in sorted(avas))


def canonical_from_name(name: x509.Name) -> str:
    """Canonical slash form of a certificate's subject or issuer."""
    parts = []
    for rdn in name.rdns:
        avas = [(SHORT_NAMES.get(ava.oid, ava.oid.dotted_string), str(ava.value)) for ava in rdn]
        parts.append(_rdn_text(avas))
    return "".join(f"/{part}" for part in parts)


def _decode_escapes(text: str, pattern: re.Pattern[str]) -> str:
    """Replace runs of byte escapes (``\\xC3\\xA9`` or ``\\C3\\A9``) by their UTF-8 text."""

    def replace(match: re.Match[str]) -> str:
        raw = bytes(int(h, 16) for h in re.findall(r"[0-9A-Fa-f]{2}", match.group(0)))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DNError(f"byte escapes {match.group(0)!r} are not valid UTF-8") from None

    return pattern.sub(replace, text)


_SLASH_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_RFC_ESCAPES = re.compile(r"(?:\\[0-9A-Fa-f]{2})+")
_SLASH_SPLIT = re.compile(r"/(?=[A-Za-z][A-Za-z0-9.\-]*=)")


def _attribute(name: str, whole: str) -> str:
    name = name.strip()
    if re.fullmatch(r"\d+(\.\d+)+", name):
        return name
    short = ALIASES.get(name.upper())
    if short is None:
        raise DNError(f"unknown attribute type {name!r} in DN {whole!r}")
    return short


def _split_ava(text: str, whole: str) -> tuple[str, str]:
    if "=" not in text:
        raise DNError(f"{text!r} in DN {whole!r} is not TYPE=value")
    name, value = text.split("=", 1)
    return _attribute(name, whole), value


def _parse_slash(text: str) -> list[str]:
    text = _decode_escapes(text, _SLASH_ESCAPES)
    rdns = []
    for part in _SLASH_SPLIT.split(text[1:]):
        # A '+' inside a slash DN separates AVAs only when another TYPE= follows it.
        avas = re.split(r"\+(?=[A-Za-z][A-Za-z0-9.\-]*=)", part)
        rdns.append(_rdn_text([_split_ava(ava, text) for ava in avas]))
    return rdns


def _split_unescaped(text: str, separator: str) -> list[str]:
    pieces, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise DNError(f"DN {text!r} ends with a lone backslash")
    pieces.append("".join(current))
    return pieces


def _unescape_rfc_value(value: str) -> str:
    value = _decode_escapes(value, _RFC_ESCAPES)
    return re.sub(r"\\(.)", r"\1", value)


def _parse_rfc4514(text: str) -> list[str]:
    rdns = []
    for rdn in _split_unescaped(text, ","):
        avas = []
        for ava in _split_unescaped(rdn, "+"):
            name, value = _split_ava(ava, text)
            avas.append((name, _unescape_rfc_value(value.strip())))
        rdns.append(_rdn_text(avas))
    return list(reversed(rdns))  # RFC 4514 lists the most specific RDN first


def canonical_from_string(text: str) -> str:
    """Canonical slash form of a DN given as text (slash, or RFC 2253/4514 form).

    Raises:
        DNError: the text is empty or not a DN.
    """
    text = text.strip()
    if not text:
        raise DNError("the DN is empty")
    rdns = _parse_slash(text) if text.startswith("/") else _parse_rfc4514(text)
    if not all(rdns):
        raise DNError(f"DN {text!r} has an empty component")
    return "".join(f"/{rdn}" for rdn in rdns)


def display_from_canonical(canonical: str) -> str:
    """RFC 4514 rendering for people (most specific first), from the canonical form."""
    rdns = _parse_slash(canonical)

    def escape(value: str) -> str:
        value = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
        if value.startswith((" ", "#")):
            value = "\\" + value
        return value[:-1] + "\\ " if value.endswith(" ") else value

    rendered = []
    for rdn in reversed(rdns):
        avas = re.split(r"\+(?=[A-Za-z][A-Za-z0-9.\-]*=)", rdn)
        rendered.append("+".join(f"{n}={escape(v)}" for n, v in (a.split("=", 1) for a in avas)))
    return ",".join(rendered)
