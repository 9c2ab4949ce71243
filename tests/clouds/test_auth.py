"""Authentication against the real Keystones: every clouds.yaml entry, URL forms, and tokens
that expire in the middle of a transfer.

The token tests use ``devcloud_tls``, whose Keystone issues tokens that live shorter than the
slow transfers here. Glance checks a token when a request starts, and keystoneauth fetches a
new one before a request when the old one is close to expiry, so a transfer that outlives its
token must finish, and the calls after it must work.
"""

from __future__ import annotations

import time

import pytest

from glint.clouds import get_driver
from tests.clouds.helpers import VARIANTS, connection_for, glance_of

from .streams import Hashes, MiB, seeded_chunks

pytestmark = pytest.mark.devcloud


def test_every_cloud_entry_authenticates(devcloud):
    """Password and application credentials, every project, both Keystones."""
    for cloud in devcloud.cloud_names():
        entry = devcloud.cloud_config(cloud)
        with get_driver(connection_for(devcloud, cloud)) as driver:
            info = driver.check()
            assert info.project_id, cloud
            expected = entry["auth"].get("project_name")
            if expected and "application_credential_id" not in entry["auth"]:
                assert info.project_name == expected
            driver.list_images()


@pytest.mark.parametrize("suffix", ["", "/", "/v3/"])
def test_auth_url_forms(devcloud, suffix):
    base = devcloud.keystone_url("devcloud-1").rstrip("/").removesuffix("/v3")
    with get_driver(connection_for(devcloud, "devcloud-1", auth_url=base + suffix)) as driver:
        assert driver.check().project_id


def test_variants_cover_the_matrix(devcloud, devcloud_tls):
    """The conformance variants span both Keystones, both hash algorithms, both auth kinds and
    both schemes; a change of devcloud's layout must not shrink that silently."""
    fixtures = {"devcloud": devcloud, "devcloud_tls": devcloud_tls}
    keystones, algos, auths, schemes = set(), set(), set(), set()
    for v in VARIANTS:
        dc = fixtures[v.fixture]
        keystones.add((v.fixture, dc.keystone_url(v.cloud)))
        algos.add(dc.hash_algo(glance_of(v.cloud)))
        auths.add(connection_for(dc, v.cloud).uses_application_credential)
        schemes.add(dc.glance_url(glance_of(v.cloud)).split(":")[0])
    assert len({k for k in keystones if k[0] == "devcloud"}) >= 2
    assert algos == {"sha512", "sha256"} and auths == {True, False}
    assert schemes == {"http", "https"}


def _token_lifetime(dc) -> int:
    lifetime = dc.state.token_expiration
    assert lifetime and lifetime <= 60, "devcloud_tls should issue short-lived tokens"
    return lifetime


@pytest.fixture
def tls_driver(devcloud_tls):  # request it before ``cleanup``, which needs it open
    cloud = devcloud_tls.cloud_names()[0]
    with get_driver(connection_for(devcloud_tls, cloud)) as driver:
        yield driver


def _token(driver) -> str:
    return driver._session.get_token()  # OpenStack-specific: proves a new token was issued


def test_slow_read_outlives_token(devcloud_tls, tls_driver, cleanup):
    lifetime = _token_lifetime(devcloud_tls)
    size = 24 * MiB  # more than loopback socket buffers hold, so the server really waits
    record = tls_driver.create_and_write(
        {"name": "glint-test-slowread", "disk_format": "raw", "container_format": "bare"},
        seeded_chunks(5, size),
    )
    cleanup(tls_driver, record.id)
    first_token = _token(tls_driver)

    started = time.monotonic()
    got = Hashes()
    with tls_driver.open_read(record.id) as reader:
        for chunk in got.tee(reader):
            time.sleep((lifetime + 3) / (size / len(chunk)))
    assert time.monotonic() - started > lifetime + 2
    assert got.size == size and got.hexdigest(record.hash_algo) == record.hash_value

    assert tls_driver.get_image(record.id).status == "active"  # the call after works
    assert _token(tls_driver) != first_token


def test_slow_write_outlives_token(devcloud_tls, tls_driver, cleanup):
    lifetime = _token_lifetime(devcloud_tls)
    size, pieces = 4 * MiB, 16

    def slow():
        for chunk in seeded_chunks(6, size, chunk_size=size // pieces):
            time.sleep((lifetime + 3) / pieces)
            yield chunk

    sent = Hashes()
    record = tls_driver.create_image(
        {"name": "glint-test-slowwrite", "disk_format": "raw", "container_format": "bare"}
    )
    cleanup(tls_driver, record.id)
    first_token = _token(tls_driver)
    record = tls_driver.write_data(record.id, sent.tee(slow()), size=size)
    assert record.status == "active" and record.checksum == sent.hexdigest("md5")
    assert _token(tls_driver) != first_token
    assert any(i.id == record.id for i in tls_driver.list_images())
