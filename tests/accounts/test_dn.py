"""DN canonicalisation: every string form of one subject maps to one key, and different subjects
to different keys."""

import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from glint.accounts.dn import (
    MAX_DN_LENGTH,
    DNError,
    canonical_from_name,
    canonical_from_string,
    display_from_canonical,
    rdns_from_canonical,
)
from tests.identity.lookalikes import CANONICAL, SUBJECTS, name, openssl_subject
from tests.pki import make_ca, make_user_cert

CN, ORG, OU, UID = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.USER_ID,
)
C = [(NameOID.COUNTRY_NAME, "CA")]


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


def test_a_service_dn_with_a_slash_in_its_cn_is_read_as_one_cn_and_stored_escaped():
    canonical = "/DC=gov/DC=fnal/CN=http\\/voms.fnal.gov"
    assert canonical_from_string("/DC=gov/DC=fnal/CN=http/voms.fnal.gov") == canonical
    assert canonical_from_string("/DC=gov/DC=fnal/CN=http\\/voms.fnal.gov") == canonical
    assert canonical_from_string("CN=http/voms.fnal.gov,DC=fnal,DC=gov") == canonical
    assert display_from_canonical(canonical) == "CN=http/voms.fnal.gov,DC=fnal,DC=gov"


def test_certificate_and_strings_agree():
    ca = make_ca("Test CA")
    cert = make_user_cert(ca, "José Müller", extra_ou="Physics")[0]
    from_cert = canonical_from_name(cert.subject)
    assert canonical_from_string(cert.subject.rfc4514_string()) == from_cert
    assert canonical_from_string(display_from_canonical(from_cert)) == from_cert


@pytest.mark.parametrize(
    "bad", ["", "   ", "/Nonsense", "XYZ=1,CN=a", "CN=a\\", "/CN=x/", "CN=a,,O=b"]
)
def test_bad_strings_are_refused_with_a_reason(bad):
    with pytest.raises(DNError):
        canonical_from_string(bad)


# Look-alikes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(SUBJECTS))
def test_each_lookalike_subject_has_its_own_key(key):
    assert canonical_from_name(SUBJECTS[key]) == CANONICAL[key]
    assert len(set(CANONICAL.values())) == len(CANONICAL)


@pytest.mark.parametrize("key", sorted(SUBJECTS))
def test_every_spelling_of_a_lookalike_subject_reads_back_to_its_key(key):
    subject, canonical = SUBJECTS[key], CANONICAL[key]
    spellings = [canonical, subject.rfc4514_string(), display_from_canonical(canonical)]
    assert {canonical_from_string(text) for text in spellings} == {canonical}


def test_the_slash_form_without_escapes_is_the_four_rdn_admin_and_the_multi_valued_rdn():
    """The plain slash form keeps the meaning OpenSSL -subj gives it; a look-alike needs its
    escapes."""
    assert (
        canonical_from_string("/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin")
        == CANONICAL["admin"]
    )
    assert (
        canonical_from_string("/C=CA/O=Glint Test Grid/CN=Doe\\, John+UID=jd") == CANONICAL["multi"]
    )
    assert (
        canonical_from_string("/C=CA/O=Glint Test Grid\\/OU=Admins/CN=Sec Admin")
        == CANONICAL["admin-lookalike"]
    )
    assert (
        canonical_from_string("/C=CA/O=Glint Test Grid/CN=Doe, John\\+UID=jd")
        == CANONICAL["multi-lookalike"]
    )
    assert (
        canonical_from_string('CN="Doe, John+UID=jd",O=Glint Test Grid,C=CA')
        == CANONICAL["multi-lookalike"]
    )


# What OpenSSL makes of the same strings ---------------------------------------------------------

SUBJ_STRINGS = [
    "/C=CA/O=Test Grid/OU=Admins/CN=Sec Admin",
    "/C=CA/O=Test Grid\\/OU=Admins/CN=Sec Admin",
    "/DC=org/DC=example/CN=Doe\\, John+UID=jd",
    "/DC=org/DC=example/CN=Doe\\, John\\+UID=jd",
    "/DC=org/DC=example/UID=jd+CN=Doe\\, John",
    "/DC=ch/DC=cern/OU=computers/CN=host\\/node.example.org",
    "/C=CA/CN=a=b",
    '/C=CA/CN=a,b;c<d>"e',
    "/C=CA/CN=\\#hash",
    "/C=DE/O=GermanGrid/CN=José Müller",
    "/C=CA/CN=back\\\\slash",
]


@pytest.fixture(scope="module")
def openssl_key(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("openssl") / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def openssl_cert(key_path, subj: str) -> x509.Certificate:
    result = subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-key",
            str(key_path),
            "-days",
            "1",
            "-utf8",
            "-subj",
            subj,
        ],
        capture_output=True,
        check=True,
    )
    return x509.load_pem_x509_certificate(result.stdout)


@pytest.mark.parametrize("subj", SUBJ_STRINGS)
def test_an_openssl_subj_string_names_the_certificate_openssl_makes_of_it(openssl_key, subj):
    """``openssl req -subj S`` and ``glint user add --dn S`` name the same RDN sequence, and the
    RFC 2253 string OpenSSL prints for that certificate (nginx, Apache) reads back to it too."""
    cert = openssl_cert(openssl_key, subj)
    canonical = canonical_from_name(cert.subject)
    assert canonical_from_string(subj) == canonical
    assert canonical_from_string(openssl_subject(cert, "RFC2253")) == canonical
    if "\\\\" not in subj:
        assert canonical_from_string(openssl_subject(cert, "compat")) == canonical


def test_openssl_compat_output_leaves_a_backslash_unescaped_so_it_reads_differently(openssl_key):
    """Why a slash-form DN header is not trusted without the certificate beside it."""
    cert = openssl_cert(openssl_key, "/C=CA/CN=a\\\\/OU=x")  # CN 'a\', then OU 'x'
    assert openssl_subject(cert, "compat") == "/C=CA/CN=a\\/OU=x"
    assert canonical_from_name(cert.subject) == "/C=CA/CN=a\\\\/OU=x"
    assert (
        canonical_from_string(openssl_subject(cert, "compat")) == "/C=CA/CN=a\\/OU=x"
    )  # one CN 'a/OU=x'


# Escaping and round trips -------------------------------------------------------------------------

TRICKY = {
    "backslash": name(C, [(CN, "a\\b")]),
    "backslash-slash": name(C, [(CN, "a\\/b")]),
    "slash": name(C, [(CN, "a/b")]),
    "plus": name(C, [(CN, "a+b")]),
    "two cns": name(C, [(CN, "a")], [(CN, "b")]),
    "two cns in one rdn": name(C, [(CN, "a"), (CN, "b")]),
    "hash": name(C, [(CN, "#lead")]),
    "spaces": name(C, [(CN, " lead and trail ")]),
    "space only": name(C, [(CN, " ")]),
    "newline": name(C, [(CN, "a\nb")]),
    "bidi override": name(C, [(CN, "evil\u202etxt.exe")]),
    "zero width": name(C, [(CN, "ad\u200bmin")]),
    "c1": name(C, [(CN, "a\x85b")]),
    "equals and commas": name(C, [(CN, "a=b, c; d")]),
    "quotes": name(C, [(CN, '"quoted"')]),
    "hex-looking": name(C, [(CN, "\\xC3\\xA9")]),
    "unknown oid": name(C, [(ObjectIdentifier("1.3.6.1.4.1.99999.1"), "custom")]),
    "multi-valued": name(C, [(UID, "jd"), (CN, "Doe, John")]),
    "non-ascii": name(C, [(CN, "José Müller")]),
}


@pytest.mark.parametrize("key", sorted(TRICKY))
def test_tricky_values_round_trip_through_every_form(key):
    subject = TRICKY[key]
    canonical = canonical_from_name(subject)
    assert canonical_from_string(canonical) == canonical
    assert canonical_from_string(display_from_canonical(canonical)) == canonical
    assert canonical_from_string(subject.rfc4514_string()) == canonical
    rdns = rdns_from_canonical(canonical)
    assert [sorted(str(value) for _, value in rdn) for rdn in rdns] == [
        sorted(ava.value for ava in rdn) for rdn in subject.rdns
    ]


def test_tricky_values_all_have_different_keys():
    keys = [canonical_from_name(subject) for subject in TRICKY.values()]
    assert len(set(keys)) == len(keys)


def test_invisible_characters_are_visible_in_the_key():
    assert canonical_from_name(TRICKY["bidi override"]) == "/C=CA/CN=evil\\xE2\\x80\\xAEtxt.exe"
    assert canonical_from_name(TRICKY["newline"]) == "/C=CA/CN=a\\x0Ab"
    assert canonical_from_name(TRICKY["spaces"]) == "/C=CA/CN= lead and trail\\x20"
    assert canonical_from_name(TRICKY["hash"]) == "/C=CA/CN=\\#lead"


def test_a_multi_valued_rdn_is_sorted_whatever_order_it_is_given_in():
    expected = "/C=CA/CN=x+UID=jd"
    assert (
        canonical_from_string("/C=CA/UID=jd+CN=x")
        == canonical_from_string("/C=CA/CN=x+UID=jd")
        == expected
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("/C=CA/CN=Doe\\, John", "Doe, John"),  # OpenSSL -subj escaping
        ("/C=CA/CN=a\\/b", "a/b"),
        ("/C=CA/CN=a\\+b", "a+b"),
        ("/C=CA/CN=a\\\\b", "a\\b"),
        ("/C=CA/CN=C++", "C++"),  # a '+' that cannot start an AVA stays in the value
        ("/C=CA/CN=Smith + Jones", "Smith + Jones"),
        ("/C=CA/CN=host/node.example.org", "host/node.example.org"),
        ("/C=CA/CN=a/b/c", "a/b/c"),
        ("/C=CA/CN=#hash", "#hash"),
        ("/C=CA/CN=\\#00ff", "#00ff"),
    ],
)
def test_slash_input_values(text, value):
    (rdn,) = rdns_from_canonical(canonical_from_string(text))[1:]
    assert rdn == (("CN", value),)


# Ambiguous input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/C=CA/CN=host/x=1", "'/x=' may start a new RDN or belong to the CN value; write '\\/'"),
        (
            "/C=CA/CN=a+foo=b",
            "'+foo=' may start another AVA of this RDN or belong to the CN value; write '\\+'",
        ),
        ("/C=CA/O=Grid/ CN=x", "is ambiguous"),
        ("/C=CA/CN=Doe + UID=jd", "is ambiguous"),
        ("/C=CA/OU = x", "is ambiguous"),
        ("C = CA, O = Grid, CN = Jane", "OpenSSL's one-line output"),
        ('CN = "Doe, John" + UID = jd, C = CA', "OpenSSL's one-line output"),
        ("CN=Jane;O=Grid;C=CA", "';' separates RDNs in RFC 2253 but not in RFC 4514"),
        ('CN=a"b,C=CA', "double quote"),
        ("/C=CA//CN=x", "empty RDN"),
        ("CN=#0403616263,C=CA", "BER-encoded"),
    ],
)
def test_ambiguous_input_is_refused_with_what_to_write(text, message):
    with pytest.raises(DNError) as refusal:
        canonical_from_string(text)
    assert message in str(refusal.value)


# One length limit --------------------------------------------------------------------------------


def _dn_of_length(length: int) -> str:
    head = "/C=CA/CN="
    return head + "x" * (length - len(head))


def test_the_length_limit_is_on_the_canonical_form_wherever_the_dn_comes_from():
    longest = _dn_of_length(MAX_DN_LENGTH)
    assert canonical_from_string(longest) == longest
    with pytest.raises(DNError, match="at most 1,024"):
        canonical_from_string(_dn_of_length(MAX_DN_LENGTH + 1))
    with pytest.raises(DNError, match="at most 1,024"):
        canonical_from_string("CN=" + "x" * MAX_DN_LENGTH + ",C=CA")
    with pytest.raises(DNError, match="at most 1,024"):
        canonical_from_name(name(C, *[[(OU, "u" * 60)] for _ in range(20)]))
    # Escapes count as written: 600 slashes are 1,200 characters stored.
    with pytest.raises(DNError, match="at most 1,024"):
        canonical_from_string("CN=" + "/" * 600 + ",C=CA")


def test_a_long_dn_is_named_short_in_the_message():
    with pytest.raises(DNError) as refusal:
        canonical_from_string("/C=CA/CN=" + "x" * 25_000 + "/x=1")
    assert len(str(refusal.value)) < 600


def test_an_empty_subject_is_refused():
    with pytest.raises(DNError, match="empty"):
        canonical_from_name(x509.Name([]))
