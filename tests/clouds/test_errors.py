"""Every typed error, provoked for real: each has its stable code and a message that names what
to fix and never the secret.

Runs against the devcloud rather than the conformance variants: the faults (a stopped Glance, a
wrong CA) are properties of a cloud, not of a driver connection.
"""

from __future__ import annotations

import socket
import uuid

import pytest

from glint.clouds import (
    AuthenticationFailed,
    CatalogError,
    EndpointUnreachable,
    NotFound,
    ProjectNotFound,
    ServiceUnavailable,
    TLSVerificationFailed,
    get_driver,
)
from tests.clouds.helpers import connection_for

pytestmark = pytest.mark.devcloud

WRONG = "wrong-" + uuid.uuid4().hex


def _check(connection):
    with get_driver(connection) as driver:
        return driver.check()


def _assert_safe(error, *secrets):
    text = f"{error} {error!r} {error.args}"
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize("cloud", ["devcloud-1", "devcloud-2"])
def test_wrong_password(devcloud, cloud):
    connection = connection_for(devcloud, cloud, password=WRONG)
    with pytest.raises(AuthenticationFailed) as info:
        _check(connection)
    assert info.value.code == "authentication_failed"
    assert connection.username in str(info.value)
    _assert_safe(info.value, WRONG)
    assert WRONG not in repr(connection)


def test_wrong_application_credential_secret(devcloud):
    connection = connection_for(devcloud, "devcloud-2-appcred", application_credential_secret=WRONG)
    with pytest.raises(AuthenticationFailed) as info:
        _check(connection)
    _assert_safe(info.value, WRONG)


@pytest.mark.parametrize("scope", ["project_name", "project_id"])
def test_unknown_project(devcloud, scope):
    overrides = {"project_name": None, "project_id": None, scope: "no-such-" + uuid.uuid4().hex}
    connection = connection_for(devcloud, "devcloud-1", **overrides)
    with pytest.raises(ProjectNotFound) as info:
        _check(connection)
    assert info.value.code == "project_not_found"
    assert overrides[scope] in str(info.value)
    _assert_safe(info.value, connection.password)


def test_project_without_role(devcloud):
    """The user of project 1 exists, but has no role on project 2 of the same cloud."""
    other = connection_for(devcloud, "devcloud-1-p2")
    with get_driver(other) as driver:
        other_project = driver.check().project_id
    connection = connection_for(devcloud, "devcloud-1", project_name=None, project_id=other_project)
    with pytest.raises(ProjectNotFound):
        _check(connection)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_closed_port_is_unreachable(devcloud):
    url = f"http://127.0.0.1:{_closed_port()}"
    connection = connection_for(devcloud, "devcloud-1", auth_url=url, connect_timeout=5)
    with pytest.raises(EndpointUnreachable) as info:
        _check(connection)
    assert info.value.code == "endpoint_unreachable" and info.value.retryable
    assert url in str(info.value) and "refused" in str(info.value)


def test_unknown_region(devcloud):
    connection = connection_for(devcloud, "devcloud-1", region="no-such-region")
    with pytest.raises(CatalogError) as info:
        _check(connection)
    assert "no-such-region" in str(info.value)


def test_not_found(devcloud):
    with get_driver(connection_for(devcloud, "devcloud-1")) as driver:
        missing = str(uuid.uuid4())
        with pytest.raises(NotFound) as info:
            driver.get_image(missing)
        assert info.value.code == "not_found" and missing in str(info.value)
        with pytest.raises(NotFound):
            driver.open_read(missing)


def test_stopped_glance(devcloud):
    """A stopped Glance is a retryable error, and the same driver works again after a restart."""
    cloud = "devcloud-2"
    with get_driver(connection_for(devcloud, cloud)) as driver:
        driver.check()
        devcloud.stop(cloud)
        try:
            for call in (driver.list_images, driver.check):
                with pytest.raises((EndpointUnreachable, ServiceUnavailable)) as info:
                    call()
                assert info.value.retryable
                assert devcloud.glance_url(cloud) in str(info.value)
        finally:
            devcloud.start(cloud)
        driver.list_images()


def test_tls_wrong_ca(devcloud_tls, other_ca_pem):
    cloud = devcloud_tls.cloud_names()[0]
    connection = connection_for(devcloud_tls, cloud, ca_bundle=other_ca_pem)
    with pytest.raises(TLSVerificationFailed) as info:
        _check(connection)
    assert info.value.code == "tls_verification_failed"
    assert "127.0.0.1" in str(info.value) and "CA bundle" in str(info.value)


def test_tls_without_ca_bundle(devcloud_tls):
    """The system trust store does not know devcloud's CA either."""
    cloud = devcloud_tls.cloud_names()[0]
    with pytest.raises(TLSVerificationFailed):
        _check(connection_for(devcloud_tls, cloud, ca_bundle=None))


def test_tls_right_ca(devcloud_tls):
    for cloud in devcloud_tls.cloud_names():
        assert _check(connection_for(devcloud_tls, cloud)).project_id


@pytest.fixture(scope="module")
def other_ca_pem() -> str:
    """A CA certificate that signed nothing devcloud serves."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not the devcloud CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
