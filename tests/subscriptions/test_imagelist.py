"""A signed list is read only when OpenSSL verifies its signature and its signer's chain against
the server's CAs (with their CRLs), and the signer is the endorser the list names."""

from __future__ import annotations

import datetime as dt

import pytest

from glint.subscriptions import imagelist
from tests.pki import CADirectory, make_ca, write_pem
from tests.subscriptions.lists import Endorser, image, image_list

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def trust(tmp_path):
    """A hashed CA directory with a CRL, an endorser of its CA, and one it revoked."""
    ca = make_ca("List Test CA")
    good, revoked = Endorser.of(ca, "Good Publisher"), Endorser.of(ca, "Revoked Publisher")
    directory = CADirectory(tmp_path / "certificates")
    directory.path.mkdir()
    directory.add_ca(ca, revoked=[revoked.cert])
    return directory, good, revoked


def signed(endorser: Endorser, **kwargs) -> bytes:
    return endorser.sign(image_list(endorser, [image("centos", b"x" * 100)], "http://h", **kwargs))


def read(data: bytes, directory) -> imagelist.ImageList:
    content, signer = imagelist.verify(data, ca_dir=str(directory.path))
    return imagelist.parse(content, signer, NOW)


def test_a_good_list_verifies_and_reads(trust):
    directory, good, _revoked = trust
    listed = read(signed(good, version="7"), directory)
    assert (listed.version, listed.endorser_dn) == ("7", good.dn)
    (only,) = listed.images
    assert (only.title, only.size, only.arch) == ("centos", 100, "x86_64")


def test_a_revoked_endorser_is_refused(trust):
    directory, _good, revoked = trust
    with pytest.raises(imagelist.ListRefused, match="certificate revoked"):
        read(signed(revoked), directory)


def test_a_tampered_list_is_refused(trust):
    directory, good, _revoked = trust
    data = signed(good).replace(b'"Glint test list"', b'"Glint evil list"')
    with pytest.raises(imagelist.ListRefused, match="signature does not verify"):
        read(data, directory)


def test_a_signer_of_another_ca_is_refused(trust):
    directory, _good, _revoked = trust
    stranger = Endorser.of(make_ca("Unknown CA"), "Stranger")
    with pytest.raises(imagelist.ListRefused, match="unable to get local issuer certificate"):
        read(signed(stranger), directory)


def test_the_signer_must_be_the_endorser_the_list_names(trust):
    directory, good, revoked = trust
    data = good.sign(
        image_list(
            good, [image("c", b"1")], "http://h", listed_endorser=(revoked.dn, revoked.ca_dn)
        )
    )
    with pytest.raises(imagelist.ListRefused, match="as its endorser, but .*Good Publisher"):
        read(data, directory)


def test_an_expired_list_and_bad_json_are_refused(trust):
    directory, good, _revoked = trust
    with pytest.raises(imagelist.ListRefused, match="expired on"):
        read(signed(good, expires=NOW - dt.timedelta(hours=1)), directory)
    with pytest.raises(imagelist.ListRefused, match="not JSON"):
        read(good.sign(b"{not json"), directory)
    with pytest.raises(imagelist.ListRefused, match="sl:checksum:sha512"):
        read(good.sign(signed_json_without_checksum(good)), directory)


def signed_json_without_checksum(endorser) -> bytes:
    return image_list(endorser, [image("c", b"1")], "http://h").replace(
        b'"sl:checksum:sha512"', b'"sl:checksum:md5"'
    )


def test_no_trust_store_is_a_clear_refusal(trust):
    _directory, good, _revoked = trust
    with pytest.raises(imagelist.ListRefused, match="no CA to check"):
        imagelist.verify(signed(good))


def test_a_ca_file_without_crls_verifies(trust, tmp_path):
    _directory, good, _revoked = trust
    ca_file = write_pem(tmp_path / "ca.pem", good.ca.cert)
    content, signer = imagelist.verify(signed(good), ca_file=str(ca_file))
    assert imagelist.parse(content, signer, NOW).endorser_dn == good.dn


@pytest.mark.parametrize(
    ("version", "than", "order"),
    [("2", "1", 1), ("1.10", "1.9", 1), ("1", "1", 0), ("1.0.1", "1.1", -1), ("20240101", "9", 1)],
)
def test_versions_compare_as_publishers_number_them(version, than, order):
    assert imagelist.newer(version, than) == order
