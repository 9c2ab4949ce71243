"""Test clients that carry a person's certificate, the only way anyone is identified in Glint.

Django's test client has no TLS, so the client puts the verified chain into the WSGI environ under
``glint.client_chain``, exactly as ``glint serve`` does after the handshake.
"""

from __future__ import annotations

from functools import lru_cache

from django.test import Client

from glint.accounts import services
from glint.accounts.models import User
from tests.pki import make_ca, make_user_cert


@lru_cache(maxsize=1)
def test_ca():
    return make_ca("Glint Test CA")


class CertificateClient(Client):
    """A Django test client that presents ``cert`` on every request."""

    def __init__(self, cert, **defaults):
        super().__init__(**defaults)
        self.cert = cert

    def request(self, **request):
        request.setdefault("glint.client_chain", [self.cert])
        return super().request(**request)


def certificate_for(common_name: str):
    """A fresh client certificate (and key) for ``common_name`` from the shared test CA."""
    return make_user_cert(test_ca(), common_name)


def client_for(user: User) -> CertificateClient:
    """A client whose certificate carries ``user``'s DN."""
    cn = user.dn.rsplit("/CN=", 1)[1]
    cert, _key = certificate_for(cn)
    return CertificateClient(cert)


def make_user(common_name: str, *, admin: bool = False, group=None, role: str = "member") -> User:
    """Register a person with the test CA's DN layout and, optionally, a group role."""
    dn = f"/C=CA/O=Glint Test Grid/CN={common_name}"
    user, _ = services.add_user(
        dn, admin=admin, group_name=group.name if group else None, role=role
    )
    return user
