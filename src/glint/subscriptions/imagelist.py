"""HEPiX image lists: the S/MIME signature, who signed, and what the JSON inside says.

A publisher signs a JSON document (``{"hv:imagelist": {...}}``) with their grid certificate and
publishes it as S/MIME (multipart/signed, or opaque ``application/pkcs7-mime``). :func:`verify`
checks the signature and the signer's chain with OpenSSL (``openssl cms -verify``) against the
server's own trust store, with its CRLs whenever the store has any, so an endorser revoked by
their CA is refused like a revoked person. The signer must be the expected endorser *and* the
endorser the list names itself (``hv:endorser``), as atrope checks and cloudkeeper means to.
:func:`parse` then reads the list strictly: every field Glint relies on must be there, with the
right type, or the whole list is refused with the reason (nothing of a bad list is used).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

from cryptography import x509

from glint.accounts.certificates import crls_present
from glint.accounts.dn import DNError, canonical_from_name, canonical_from_string

__all__ = [
    "ImageList",
    "ListImage",
    "ListRefused",
    "MAX_LIST_BYTES",
    "images_of",
    "newer",
    "parse",
    "verify",
]

#: A signed list larger than this is refused unread (real lists are tens of KiB).
MAX_LIST_BYTES = 4 * 2**20
#: Images one list may name.
MAX_IMAGES = 1000
#: Seconds OpenSSL may take to verify a list.
VERIFY_TIMEOUT = 30
_SHA512 = re.compile(r"[0-9a-fA-F]{128}")


class ListRefused(Exception):
    """The list is not used; ``message`` says why, for the subscription's page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class ListImage:
    """One image of a list, as Glint uses it."""

    identifier: str
    title: str
    uri: str
    size: int
    sha512: str
    version: str = ""
    os: str = ""
    os_version: str = ""
    arch: str = ""
    disk_format: str = ""
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ImageList:
    """A verified, parsed list.

    Attributes:
        identifier, title, version: The list's ``dc:identifier``, ``dc:title``, ``hv:version``.
        expires: ``dc:date:expires`` (None when the list names no expiry).
        endorser_dn, endorser_ca: Who signed it (canonical DNs, checked against the list's own).
        digest: sha256 of the signed JSON: an equal version must carry the same content.
        images: Its images, in list order.
        document: The JSON as parsed (kept as the last good list).
    """

    identifier: str
    title: str
    version: str
    expires: datetime.datetime | None
    endorser_dn: str
    endorser_ca: str
    digest: str
    images: tuple[ListImage, ...]
    document: dict


def verify(signed: bytes, *, ca_file: str = "", ca_dir: str = "") -> tuple[bytes, x509.Certificate]:
    """Check the S/MIME signature of ``signed`` and its signer's chain; the content and signer.

    Raises:
        ListRefused: No trust store is configured, the signature or the chain does not verify
            (a revoked endorser, an unknown CA, a tampered list), or the input is not S/MIME.
    """
    if not (ca_file or ca_dir):
        raise ListRefused(
            "Glint has no CA to check the list's signature against: configure tls_client_ca or "
            "tls_client_ca_dir (the CAs of the server's client certificates)."
        )
    with tempfile.TemporaryDirectory(prefix="glint-list-") as work:
        folder = Path(work)
        (folder / "list.smime").write_bytes(signed)
        command = [
            "openssl", "cms", "-verify", "-inform", "SMIME", "-purpose", "any",
            "-in", str(folder / "list.smime"), "-out", str(folder / "list.json"),
            "-signer", str(folder / "signer.pem"),
        ]  # fmt: skip
        if ca_file:
            command += ["-CAfile", ca_file]
        if ca_dir:
            command += ["-CApath", ca_dir]
        if crls_present(ca_file, ca_dir):
            command.append("-crl_check_all")
        try:
            result = subprocess.run(
                command, capture_output=True, timeout=VERIFY_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise ListRefused("Checking the list's signature took too long.") from None
        if result.returncode != 0:
            raise ListRefused(f"The list's signature does not verify: {_openssl_reason(result)}.")
        content = (folder / "list.json").read_bytes()
        signers = x509.load_pem_x509_certificates((folder / "signer.pem").read_bytes())
    return _without_text_headers(content), signers[0]


def _openssl_reason(result: subprocess.CompletedProcess) -> str:
    """The part of OpenSSL's complaint a person can act on ("certificate revoked", ...)."""
    text = result.stderr.decode(errors="replace")
    found = re.search(r"[Vv]erify error:(.+)", text) or re.search(
        r"error:[0-9A-F]+:[^:]*:[^:]*:(.+)", text
    )
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else f"openssl exited with {result.returncode}"


def _without_text_headers(content: bytes) -> bytes:
    """A list signed with ``-text`` carries a ``Content-Type: text/plain`` header block first."""
    stripped = content.lstrip()
    if stripped.lower().startswith(b"content-type:"):
        head, separator, body = stripped.replace(b"\r\n", b"\n").partition(b"\n\n")
        if separator:
            return body
    return content


def parse(content: bytes, signer: x509.Certificate, now: datetime.datetime) -> ImageList:
    """Read a verified list's JSON; the signer must be the endorser the list names.

    Raises:
        ListRefused: Not JSON, not an image list, a field missing or of the wrong type, a signer
            other than the list's ``hv:endorser``, an expired list, or too many images.
    """
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ListRefused(f"The list is not JSON: {exc}.") from None
    body = document.get("hv:imagelist") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise ListRefused('The list has no "hv:imagelist" object.')
    endorser = _field(body, "hv:endorser", dict)
    endorser_x509 = _field(endorser, "hv:x509", dict, "hv:endorser")
    listed_dn = _dn(_field(endorser_x509, "hv:dn", str, "hv:endorser"), "hv:dn")
    listed_ca = _dn(_field(endorser_x509, "hv:ca", str, "hv:endorser"), "hv:ca")
    signer_dn, signer_ca = canonical_from_name(signer.subject), canonical_from_name(signer.issuer)
    if (signer_dn, signer_ca) != (listed_dn, listed_ca):
        raise ListRefused(
            f"The list names {listed_dn} (CA {listed_ca}) as its endorser, but {signer_dn} "
            f"(CA {signer_ca}) signed it."
        )
    expires = _date(body.get("dc:date:expires"), "dc:date:expires")
    if expires is not None and expires <= now:
        raise ListRefused(f"The list expired on {expires:%Y-%m-%d %H:%M} UTC.")
    entries = _field(body, "hv:images", list)
    if len(entries) > MAX_IMAGES:
        raise ListRefused(
            f"The list names {len(entries)} images; Glint reads at most {MAX_IMAGES}."
        )
    images = images_of(document)
    identifiers = [image.identifier for image in images]
    if len(set(identifiers)) != len(identifiers):
        raise ListRefused("The list names one image identifier twice.")
    return ImageList(
        identifier=_field(body, "dc:identifier", str),
        title=str(body.get("dc:title") or ""),
        version=_field(body, "hv:version", str),
        expires=expires,
        endorser_dn=listed_dn,
        endorser_ca=listed_ca,
        digest=hashlib.sha256(content).hexdigest(),
        images=images,
        document=document,
    )


def images_of(document: dict) -> tuple[ListImage, ...]:
    """The images of a list's JSON (one :func:`parse` accepted), in list order.

    Raises:
        ListRefused: An image lacks a field Glint needs, or has one of the wrong kind.
    """
    entries = _field(document["hv:imagelist"], "hv:images", list)
    return tuple(_image(entry, position) for position, entry in enumerate(entries, start=1))


def _field(obj: dict, key: str, kind: type, where: str = "the list"):
    value = obj.get(key)
    if isinstance(value, kind) and not (kind is str and not value.strip()):
        return value.strip() if kind is str else value
    raise ListRefused(f'{where} has no valid "{key}".')


def _dn(value: str, key: str) -> str:
    try:
        return canonical_from_string(value)
    except DNError as exc:
        raise ListRefused(f'The endorser\'s "{key}" is not a DN: {exc}.') from None


def _date(value, key: str) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ListRefused(f'"{key}" is not a date: {value!r}.') from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _image(entry, position: int) -> ListImage:
    where = f"image {position}"
    image = entry.get("hv:image") if isinstance(entry, dict) else None
    if not isinstance(image, dict):
        raise ListRefused(f'{where} has no "hv:image" object.')
    sha512 = _field(image, "sl:checksum:sha512", str, where)
    if not _SHA512.fullmatch(sha512):
        raise ListRefused(f"{where}: sl:checksum:sha512 is not 128 hex digits.")
    size = image.get("hv:size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ListRefused(f'{where} has no valid "hv:size".')
    uri = _field(image, "hv:uri", str, where)
    if not uri.lower().startswith(("http://", "https://")):
        raise ListRefused(f"{where}: hv:uri is not an http(s) link.")
    identifier = _field(image, "dc:identifier", str, where)

    def text(key: str) -> str:
        value = image.get(key)
        return str(value).strip() if isinstance(value, (str, int, float)) else ""

    return ListImage(
        identifier=identifier,
        title=text("dc:title") or identifier,
        uri=uri,
        size=size,
        sha512=sha512.lower(),
        version=text("hv:version"),
        os=text("sl:os"),
        os_version=text("sl:osversion"),
        arch=text("sl:arch"),
        disk_format=text("hv:format").lower(),
        description=text("dc:description"),
    )


def _version_key(version: str) -> tuple:
    """ "1.10" after "1.9"; numbers compare as numbers, other parts as text, after numbers."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"[.\-_+~]", version)
    )


def newer(version: str, than: str) -> int:
    """1 if ``version`` is later than ``than``, 0 if equal, -1 if earlier (a rollback)."""
    a, b = _version_key(version), _version_key(than)
    return (a > b) - (a < b)
