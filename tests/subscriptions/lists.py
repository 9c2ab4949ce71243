"""Signed HEPiX image lists for the tests: an endorser with a grid certificate of a test CA, the
list's JSON, and its S/MIME signature (``cryptography``'s PKCS7 builder: multipart/signed, as
vmcatcher and AppDB publish)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from glint.accounts.dn import canonical_from_name
from tests.pki import make_user_cert


def slash_dn(name) -> str:
    """A DN as HEPiX lists write it (OpenSSL's /C=…/O=…/CN=… form)."""
    return canonical_from_name(name)


@dataclasses.dataclass
class Endorser:
    """A publisher's certificate and key, issued by ``ca``."""

    ca: object
    cert: object
    key: object

    @classmethod
    def of(cls, ca, cn: str = "Image Publisher") -> Endorser:
        cert, key = make_user_cert(ca, cn)
        return cls(ca, cert, key)

    @property
    def dn(self) -> str:
        return slash_dn(self.cert.subject)

    @property
    def ca_dn(self) -> str:
        return slash_dn(self.cert.issuer)

    def sign(self, content: bytes) -> bytes:
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(content)
            .add_signer(self.cert, self.key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
        )


@dataclasses.dataclass
class ListedImage:
    identifier: str
    title: str
    data: bytes
    version: str = "1"

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()


def image(title: str, data: bytes, version: str = "1") -> ListedImage:
    return ListedImage(str(uuid.uuid4()), title, data, version)


def image_list(
    endorser: Endorser,
    images: list[ListedImage],
    base_url: str,
    *,
    identifier: str = "3a7e3b08-4c1b-4d6b-9b52-2a4f3c0d9e11",
    version: str = "1",
    expires: dt.datetime | None = None,
    listed_endorser: tuple[str, str] | None = None,
    sizes: dict[str, int] | None = None,
    uris: dict[str, str] | None = None,
) -> bytes:
    """The list's JSON (not signed yet). Image bytes are served at ``base_url/<identifier>``
    unless ``uris`` gives an image (by identifier) another link."""
    now = dt.datetime.now(dt.UTC)
    dn, ca_dn = listed_endorser or (endorser.dn, endorser.ca_dn)
    body = {
        "dc:date:created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dc:date:expires": (expires or now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dc:description": "Test images",
        "dc:identifier": identifier,
        "dc:title": "Glint test list",
        "hv:endorser": {"hv:x509": {"dc:creator": "Test", "hv:ca": ca_dn, "hv:dn": dn}},
        "hv:images": [
            {
                "hv:image": {
                    "dc:identifier": i.identifier,
                    "dc:title": i.title,
                    "hv:uri": (uris or {}).get(i.identifier, f"{base_url}/{i.identifier}"),
                    "hv:size": (sizes or {}).get(i.identifier, len(i.data)),
                    "sl:checksum:sha512": i.sha512,
                    "hv:version": i.version,
                    "sl:os": "Linux",
                    "sl:osversion": "9",
                    "sl:arch": "x86_64",
                    "hv:hypervisor": "QEMU,KVM",
                }
            }
            for i in images
        ],
        "hv:version": version,
    }
    return json.dumps({"hv:imagelist": body}, indent=1).encode()
