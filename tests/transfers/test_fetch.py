"""The web-link fetcher: every refused address spelling is refused before any connection, the
address is pinned (no DNS rebinding), redirects are re-checked, credentials never shown, limits.

The refusals are proven by recording ``socket.create_connection`` (the ``connects`` fixture):
a refused address must never even be connected to, which no real server could show. The network
guard of the test run (tests/netguard) would stop a real escape in any case.
"""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest

from glint.transfers import fetch
from glint.transfers.errors import FetchFailed, TooLarge, UrlRefused
from tests.transfers.helpers import REFUSED

LOCAL = fetch.FetchPolicy(allow_cidrs=("127.0.0.0/8",))


@pytest.mark.parametrize("url", REFUSED)
def test_refused_before_any_connection(url, connects):
    with pytest.raises(UrlRefused) as refused:
        fetch.open_url(url, fetch.FetchPolicy())
    assert connects == [], "not even a connection was attempted"
    assert (
        "only http and https" in refused.value.message
        or "fetch_allow_cidrs" in refused.value.message
        or "never fetches from one" in refused.value.message
    )


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
        ("http://169.254.10.1/image", "link-local"),
        ("http://[fe80::1]/image", "link-local"),
        ("http://224.0.0.1/image", "multicast"),
    ],
)
def test_no_allow_list_opens_the_metadata_services_or_link_local(url, kind, connects):
    """An admin's allow-list, however wide, never reaches the clouds' metadata services (which
    hand out credentials), link-local or multicast addresses."""
    everything = fetch.FetchPolicy(allow_cidrs=("0.0.0.0/0", "::/0"))
    with pytest.raises(UrlRefused, match=f"a {kind} address. Glint never fetches from one"):
        fetch.open_url(url, everything)
    assert connects == []


def test_the_allow_list_setting_refuses_ranges_that_reach_link_local():
    from glint import config

    for value in ("169.254.0.0/16", "fe80::/10", "224.0.0.0/4"):
        with pytest.raises(config.ConfigError, match="never allowed for web links"):
            config.fetch_allow_cidrs(value)
    assert config.fetch_allow_cidrs("10.1.2.0/24, 127.0.0.1") == ["10.1.2.0/24", "127.0.0.1"]


def test_an_allow_listed_range_is_fetched_with_the_name_in_the_host_header(web, connects):
    digest = web.add("/disk.img", b"image bytes")
    with fetch.open_url(web.url("/disk.img", host="localhost"), LOCAL) as stream:
        assert hashlib.sha256(stream.read_all()).hexdigest() == digest
    assert connects == [("127.0.0.1", web.port)]
    assert web.requests[0]["host"] == f"localhost:{web.port}"


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "until-close"])
def test_a_body_comes_in_whole_chunks_read_into_reused_buffers(web, sized):
    """A web link's body is read straight into a pool of chunk buffers: whole chunks (not one
    per socket read), each a view of one of a few buffers, however long the image."""
    from glint.clouds import CHUNK_SIZE

    data = bytes(range(256)) * (CHUNK_SIZE * 5 // 256) + b"tail"
    digest = web.add("/disk.img", data)
    if not sized:
        web.unsized.add("/disk.img")
    lengths, buffers, hashed = [], set(), hashlib.sha256()
    with fetch.open_url(web.url("/disk.img"), LOCAL) as stream:
        for chunk in stream:
            lengths.append(len(chunk))
            buffers.add(id(chunk.obj))
            hashed.update(chunk)
    assert hashed.hexdigest() == digest
    assert lengths == [CHUNK_SIZE] * 5 + [4]
    assert len(buffers) <= 2


def test_the_address_is_resolved_once_and_pinned(web, connects, monkeypatch):
    """DNS rebinding: the name answers with an allowed address when checked and with the metadata
    service afterwards; the connection still goes to the address that was checked."""
    answers = iter(["127.0.0.1", "169.254.169.254", "169.254.169.254"])
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "images.example":  # an address literal, e.g. inside create_connection
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    web.add("/disk.img", b"x" * 1000)
    with fetch.open_url(web.url("/disk.img", host="images.example"), LOCAL) as stream:
        assert len(stream.read_all()) == 1000
    assert lookups == ["images.example"] and connects == [("127.0.0.1", web.port)]
    assert web.requests[0]["host"] == f"images.example:{web.port}"


def test_a_name_with_one_refused_answer_is_refused(connects, monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ],
    )
    with pytest.raises(
        UrlRefused, match=r"images.example \(10.1.2.3\) is not allowed: a private address"
    ):
        fetch.open_url("http://images.example/disk.img", LOCAL)
    assert connects == []


def test_every_redirect_is_checked_again(web2, connects):
    web2.redirects["/disk.img"] = f"http://127.0.0.1:{web2.port}/elsewhere"
    with pytest.raises(UrlRefused, match="127.0.0.1 is not allowed: a loopback address"):
        fetch.open_url(web2.url("/disk.img"), fetch.FetchPolicy(allow_cidrs=("127.0.0.2/32",)))
    assert connects == [("127.0.0.2", web2.port)], "the redirect's target was never connected to"


def test_credentials_are_sent_but_never_shown(web):
    web.add("/private/disk.img", b"secret image")
    url = web.url("/private/disk.img").replace("http://", "http://alice:s3cr%40t@")
    with fetch.open_url(url, LOCAL) as stream:
        assert stream.read_all() == b"secret image"
        assert "s3cr" not in stream.url and "alice" not in stream.url
    assert web.requests[0]["authorization"] == "Basic " + base64.b64encode(b"alice:s3cr@t").decode()
    with pytest.raises(FetchFailed) as missing:
        fetch.open_url(url.replace("disk.img", "nothing"), LOCAL)
    assert "404" in missing.value.message and "s3cr" not in missing.value.message
    assert fetch.redact(url) == web.url("/private/disk.img")


def test_an_announced_size_over_the_limit_is_refused_before_reading(web):
    web.add("/big.img", b"x" * 5000)
    with pytest.raises(TooLarge, match="5000 bytes, over the limit of 4096"):
        fetch.open_url(
            web.url("/big.img"), fetch.FetchPolicy(allow_cidrs=LOCAL.allow_cidrs, max_bytes=4096)
        )


def test_an_unannounced_size_stops_at_the_limit(web):
    web.add("/big.img", b"x" * 5000)
    web.unsized.add("/big.img")
    stream = fetch.open_url(
        web.url("/big.img"), fetch.FetchPolicy(allow_cidrs=LOCAL.allow_cidrs, max_bytes=4096)
    )
    with pytest.raises(TooLarge, match="more than the limit of 4096 bytes"):
        stream.read_all()


def test_a_server_that_goes_silent_times_out(web):
    web.stalled.add("/slow.img")
    stream = fetch.open_url(
        web.url("/slow.img"), fetch.FetchPolicy(allow_cidrs=LOCAL.allow_cidrs, idle_timeout=0.5)
    )
    with pytest.raises(FetchFailed, match="TimeoutError|timed out"):
        stream.read_all()


def test_checksum_files_in_gnu_and_bsd_style(web):
    sha256, sha512 = "a" * 64, "b" * 128
    text = (
        f"{sha256}  other.img\n{sha256.replace('a', 'c')} *disk.img\nSHA512 (big.img) = {sha512}\n"
    )
    assert fetch.parse_checksums(text, "disk.img") == ("sha256", "c" * 64)
    assert fetch.parse_checksums(text, "big.img") == ("sha512", sha512)
    assert fetch.parse_checksums(text, "missing.img") is None
    web.add("/SHA256SUMS", text.encode())
    assert fetch.fetch_checksum(web.url("/SHA256SUMS"), "disk.img", LOCAL) == ("sha256", "c" * 64)
    with pytest.raises(FetchFailed, match="lists no sha256 or sha512 checksum for 'missing.img'"):
        fetch.fetch_checksum(web.url("/SHA256SUMS"), "missing.img", LOCAL)


@pytest.mark.parametrize(
    "url, name",
    [
        (
            "https://cloud-images.example/jammy/current/jammy-server-cloudimg-amd64.img",
            "jammy-server-cloudimg-amd64.img",
        ),
        ("https://example.org/a/ubuntu%2022.04%20(test).qcow2?sig=1", "ubuntu-22.04-test-.qcow2"),
        ("https://example.org/../..", "image"),
        ("https://example.org/", "image"),
    ],
)
def test_the_default_name_is_the_last_path_segment_made_safe(url, name):
    assert fetch.name_from_url(url) == name


def test_the_plain_modules_import_no_django():
    """``fetch``, ``formats``, ``sources`` and ``errors`` are plain Python, like the engine."""
    import ast
    from pathlib import Path

    import glint.transfers

    for name in ("fetch", "formats", "sources", "errors"):
        tree = ast.parse((Path(glint.transfers.__file__).parent / f"{name}.py").read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not {m for m in imported if m.startswith(("django", "glint.transfers.models"))}, name


@pytest.mark.parametrize(
    "url, listed, resolves_to, handed",
    [
        ("http://127.0.0.1:8080/disk.img", [], None, True),
        (
            "http://10.1.2.3/disk.img",
            [],
            None,
            False,
        ),  # not allowed for Glint, so not for the cloud
        ("http://2130706433/disk.img", [], None, False),  # a spelling the cloud may read otherwise
        ("http://[::ffff:127.0.0.1]/disk.img", [], None, False),
        ("http://images.example/disk.img", [], "127.0.0.1", False),  # a name nobody vouched for
        ("http://images.example/disk.img", ["images.example"], "127.0.0.1", True),
        ("http://Images.Example./disk.img", ["images.example"], "127.0.0.1", True),
        (
            "http://images.example/disk.img",
            ["images.example"],
            "10.1.2.3",
            False,
        ),  # resolves inside
    ],
)
def test_which_links_a_cloud_may_be_handed(url, listed, resolves_to, handed, monkeypatch):
    """A cloud resolves the link's host itself: only hosts that cannot turn into a refused
    address are handed over (IP literals Glint allows, names an admin listed)."""
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            real(host, port, *a, **k)
            if host.lower().rstrip(".") != "images.example"
            else [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (resolves_to, port))]
        ),
    )
    assert fetch.cloud_may_fetch(url, LOCAL, listed) is handed
