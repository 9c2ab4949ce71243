"""Every request is tied to a registered person by certificate, or refused."""

import pytest
from django.test import Client

from glint.accounts.models import AccessRequest
from tests.clients import CertificateClient, certificate_for, client_for, make_user

pytestmark = pytest.mark.django_db


def test_request_without_certificate_is_refused():
    response = Client().get("/api/v1/whoami/")
    assert response.status_code == 403
    assert "client certificate is required" in response.json()["detail"]


def test_unknown_certificate_sees_its_dn_and_leaves_an_access_request():
    cert, _ = certificate_for("Stranger Danger")
    response = CertificateClient(cert).get("/images/")
    assert response.status_code == 403
    assert "/CN=Stranger Danger" in response.content.decode()
    assert AccessRequest.objects.filter(dn="/C=CA/O=Glint Test Grid/CN=Stranger Danger").exists()


def test_registered_user_is_recognised():
    user = make_user("Jane Doe")
    body = client_for(user).get("/api/v1/whoami/").json()
    assert body["dn"] == "/C=CA/O=Glint Test Grid/CN=Jane Doe"
    assert body["display_dn"] == "CN=Jane Doe,O=Glint Test Grid,C=CA"


def test_deactivated_user_is_refused():
    user = make_user("Gone Away")
    user.is_active = False
    user.save()
    assert client_for(user).get("/api/v1/whoami/").status_code == 403


def test_probes_need_no_certificate():
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").json() == {"status": "ready"}
