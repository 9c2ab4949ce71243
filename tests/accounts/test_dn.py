"""DN canonicalisation: every string form of one certificate's subject maps to one key."""

import pytest

from glint.accounts.dn import (
    DNError,
    canonical_from_name,
    canonical_from_string,
    display_from_canonical,
)
from tests.pki import make_ca, make_user_cert


@pytest.mark.parametrize(
    "text",
    [
        "/C=CA/O=Test Grid/OU=Physics/CN=Jane Doe",
        "CN=Jane Doe,OU=Physics,O=Test Grid,C=CA",
        "cn=Jane Doe, ou=Physics, o=Test Grid, c=CA",
    ],
)
def test_simple_forms_agree(text):
    assert canonical_from_string(text) == "/C=CA/O=Test Grid/OU=Physics/CN=Jane Doe"


def test_awkward_dn_forms_agree():
    slash = "/DC=org/DC=example/OU=People/OU=CERN/CN=jdoe/CN=123456/CN=Doe, John+UID=jd"
    rfc2253 = "UID=jd+CN=Doe\\, John,CN=123456,CN=jdoe,OU=CERN,OU=People,DC=example,DC=org"
    assert canonical_from_string(slash) == canonical_from_string(rfc2253)
    assert canonical_from_string(slash).endswith("/CN=Doe, John+UID=jd")


def test_non_ascii_escapes_agree():
    expected = "/C=DE/O=GermanGrid/OU=Uni/CN=José Müller"
    assert (
        canonical_from_string("/C=DE/O=GermanGrid/OU=Uni/CN=Jos\\xC3\\xA9 M\\xC3\\xBCller")
        == expected
    )
    assert (
        canonical_from_string("CN=Jos\\C3\\A9 M\\C3\\BCller,OU=Uni,O=GermanGrid,C=DE") == expected
    )


def test_service_dn_with_slash_in_value_survives():
    assert (
        canonical_from_string("/DC=gov/DC=fnal/CN=http/voms.fnal.gov")
        == "/DC=gov/DC=fnal/CN=http/voms.fnal.gov"
    )


def test_certificate_and_strings_agree():
    ca = make_ca("Test CA")
    cert = make_user_cert(ca, "José Müller", extra_ou="Physics")[0]
    from_cert = canonical_from_name(cert.subject)
    assert canonical_from_string(cert.subject.rfc4514_string()) == from_cert
    assert canonical_from_string(display_from_canonical(from_cert)) == from_cert


@pytest.mark.parametrize("bad", ["", "   ", "/Nonsense", "XYZ=1,CN=a", "CN=a\\"])
def test_bad_strings_are_refused_with_a_reason(bad):
    with pytest.raises(DNError):
        canonical_from_string(bad)
