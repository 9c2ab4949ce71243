"""Fetch an image from a web link, safely: the server-side request forgery rules of Glint.

A web link is a request Glint makes *from inside* the site on a person's behalf, so it must never
become a way to reach what only Glint can reach: the cloud metadata service (169.254.169.254),
loopback admin ports, the private network. The rules (issue 5 "Upload from a web link"):

- ``http`` and ``https`` only;
- the host is turned into addresses exactly once (:func:`resolve`): an IP literal in any spelling
  that libc's ``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``), an
  IPv6 literal (an IPv4-mapped one is judged as the IPv4 it maps), or a name looked up with
  ``getaddrinfo``; every address must be globally routable (not loopback, link-local, private,
  shared 100.64/10, reserved, multicast or unspecified) unless it lies in a range an admin
  allow-listed (``fetch_allow_cidrs``); these address rules are shared with the cloud endpoints
  (:mod:`glint.clouds.addresses`);
- the connection goes to the address that was checked (*pinned*), with the name only in the
  ``Host`` header and TLS SNI / certificate check, so a DNS answer that changes between the check
  and the connect (DNS rebinding) cannot redirect it;
- redirects are followed by hand, and every hop is checked like the first;
- credentials in the URL (``user:pass@``) are sent as HTTP Basic and never appear in a message,
  a log line or a stored URL (:func:`redact`);
- a size limit (``Content-Length`` refused up front, and counted while streaming), a connect
  timeout and an idle timeout between bytes.

No Django here: the caller passes the limits and the allow-list.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from glint.clouds import addresses
from glint.clouds.addresses import METADATA_ADDRESSES, Address, why_not_public
from glint.replication import ChunkPool
from glint.transfers.errors import FetchFailed, TooLarge, UrlRefused

__all__ = [
    "FetchPolicy",
    "cloud_may_fetch",
    "FetchStream",
    "fetch_checksum",
    "name_from_url",
    "open_url",
    "parse_checksums",
    "redact",
    "resolve",
]

MAX_REDIRECTS = 5
#: Most bytes read from a SHA256SUMS-style file.
CHECKSUM_FILE_LIMIT = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do.

    Fields:
        allow_cidrs: Ranges that are allowed although not global (an admin's choice, e.g. a site
            mirror on 10.1.2.0/24).
        max_bytes: Most bytes of body accepted (None: no limit).
        connect_timeout: Seconds to wait for a connection.
        idle_timeout: Seconds to wait for the next bytes before giving up.
        ca_file: CA certificates for https (None: the system's).
    """

    allow_cidrs: tuple[str, ...] = ()
    max_bytes: int | None = None
    connect_timeout: float = 10.0
    idle_timeout: float = 60.0
    ca_file: str | None = None

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.allow_cidrs]


def redact(url: str) -> str:
    """``url`` without its credentials (safe to show and store)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def name_from_url(url: str) -> str:
    """The default image name for a URL: its last path segment, made safe (``image`` if empty)."""
    segment = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    name = _SAFE_NAME.sub("-", segment).strip(".-")
    return name[:200] or "image"


# Addresses


#: Kinds of address no web link reaches, whatever ``fetch_allow_cidrs`` says: a link-local
#: range holds the clouds' metadata services (which hand out credentials); the others are no
#: server's.
NEVER_FETCHED = ("link-local", "multicast", "unspecified", "reserved")
CLOUD_METADATA = "cloud metadata"


def _why_refused(address: Address, policy: FetchPolicy) -> str | None:
    if address in METADATA_ADDRESSES:
        return CLOUD_METADATA
    kind = why_not_public(address)
    if kind in NEVER_FETCHED:
        return kind
    if any(address in network for network in policy.networks()):
        return None
    return kind


def resolve(url: str, policy: FetchPolicy) -> tuple[Address, str, int]:
    """Check a URL and turn its host into the one address the connection will use.

    Returns:
        (address, host name as written, port).

    Raises:
        UrlRefused: Not http(s), no host, or an address (any of a name's) that is not allowed.
        FetchFailed: The name does not resolve.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(
            f"only http and https links can be fetched, not {parts.scheme or 'a bare path'!r}"
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the link names no host")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        address = addresses.resolve(host, port, lambda found: _why_refused(found, policy))
    except addresses.AddressRefused as exc:
        never = exc.reason in NEVER_FETCHED or exc.reason == CLOUD_METADATA
        raise UrlRefused(
            f"{exc.shown} is not allowed: a {exc.reason} address. Glint "
            + (
                "never fetches from one"
                if never
                else "does not fetch from it unless an admin allow-lists its range "
                "(fetch_allow_cidrs)"
            )
        ) from None
    except addresses.NameNotResolved as exc:
        raise FetchFailed(str(exc)) from None
    except ValueError as exc:
        raise UrlRefused(str(exc)) from None
    return address, host, port


def cloud_may_fetch(url: str, policy: FetchPolicy, pull_hosts: Iterable[str]) -> bool:
    """Whether a cloud may be handed ``url`` to fetch itself (Glance ``web-download``).

    The cloud resolves the host again, and Glint cannot see what it gets: only a host that
    cannot turn into an address Glint refuses qualifies. That is an IP literal in standard
    notation whose address ``policy`` allows, or a name in ``pull_hosts`` (an admin vouches for
    its DNS) whose every address ``policy`` allows now. Any other name may answer the cloud
    differently than it answered Glint (DNS rebinding): Glint streams those links itself.
    """
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        standard = ipaddress.ip_address(host)
    except ValueError:
        standard = None
    try:
        if standard is not None:
            # 0x7f.1 or ::ffff:10.0.0.1 may be read differently by the cloud than by Glint.
            return addresses.literal(host) == standard and resolve(url, policy) is not None
        return host in set(pull_hosts) and resolve(url, policy) is not None
    except (UrlRefused, FetchFailed):
        return False


# The connection


def _connection(
    scheme: str, host: str, port: int, address: Address, policy: FetchPolicy
) -> http.client.HTTPConnection:
    """An HTTP(S) connection to ``address`` that speaks to ``host`` (Host header, SNI, cert)."""

    def connect_pinned(_address, timeout, source_address=None):
        sock = socket.create_connection(
            (str(address), port), policy.connect_timeout, source_address
        )
        sock.settimeout(policy.idle_timeout)
        return sock

    if scheme == "https":
        context = ssl.create_default_context(cafile=policy.ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=policy.connect_timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=policy.connect_timeout)
    conn._create_connection = connect_pinned  # the one hook http.client offers for this
    return conn


class FetchStream:
    """An open response body: iterate it for chunks; ``size`` is the announced length.

    Attributes:
        url: The final URL after redirects, redacted.
        size: ``Content-Length``, if the server sent one.
        received: Bytes read so far.
    """

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        url: str,
        max_bytes: int | None,
        sock: socket.socket | None = None,
    ):
        self._conn, self._response, self._sock = conn, response, sock
        self.url = url
        length = response.getheader("Content-Length")
        self.size = int(length) if length and length.isdigit() else None
        self.received = 0
        self._max = max_bytes

    def __iter__(self) -> Iterator[bytes | memoryview]:
        """The body in whole chunks (the last may be shorter), each a view of a buffer of a pool
        that is read into again once nobody holds the view: no chunk is allocated per read."""
        pool = ChunkPool()
        try:
            while True:
                try:
                    buffer = pool.take()
                    chunk = memoryview(buffer)[: self._response.readinto(buffer)]
                except (OSError, http.client.HTTPException) as exc:
                    raise FetchFailed(
                        f"reading {self.url} failed after {self.received} bytes: "
                        f"{type(exc).__name__}: {exc}"
                    ) from None
                if not chunk:
                    break
                self.received += len(chunk)
                if self._max is not None and self.received > self._max:
                    raise TooLarge(f"{self.url} sent more than the limit of {self._max} bytes")
                yield chunk
                del chunk, buffer  # no view left here: the pool may give the buffer out again
        finally:
            self.close()
        if self.size is not None and self.received != self.size:
            raise FetchFailed(f"{self.url} announced {self.size} bytes but sent {self.received}")

    def read_all(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._response.close()
        self._conn.close()

    def interrupt(self) -> None:
        """End a read blocked in another thread now (a cancel while the server stalls): shutting
        the socket down, unlike closing it, wakes that thread."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FetchStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_url(url: str, policy: FetchPolicy) -> FetchStream:
    """GET ``url`` under ``policy``, following checked redirects; the body is not read yet.

    Raises:
        UrlRefused: The URL or a redirect's target is not allowed (nothing was connected to).
        TooLarge: ``Content-Length`` is over the limit.
        FetchFailed: Unreachable, an HTTP error, too many redirects.
    """
    parts = urlsplit(url)
    auth = None
    if parts.username is not None:
        auth = (
            "Basic "
            + base64.b64encode(
                f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            ).decode()
        )
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        address, host, port = resolve(current, policy)
        here = urlsplit(current)
        shown = redact(current)
        conn = _connection(here.scheme, host, port, address, policy)
        target = quote(here.path or "/", safe="/%:@!$&'()*+,;=~-._") + (
            f"?{here.query}" if here.query else ""
        )
        headers = {"User-Agent": "Glint", "Accept-Encoding": "identity"}
        if auth and urlsplit(current).hostname == parts.hostname:
            headers["Authorization"] = auth  # never sent on to another host
        try:
            conn.request("GET", target, headers=headers)
            sock = conn.sock  # the response takes it over: http.client may let go of it
            response = conn.getresponse()
        except ssl.SSLError as exc:
            conn.close()
            raise FetchFailed(f"TLS with {host} failed: {exc.reason or exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise FetchFailed(f"cannot fetch {shown}: {type(exc).__name__}: {exc}") from None
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location")
            conn.close()
            if not location:
                raise FetchFailed(f"{shown} redirects without saying where")
            current = urljoin(current, location)
            continue
        if response.status != 200:
            conn.close()
            raise FetchFailed(f"{shown} answered HTTP {response.status} {response.reason}")
        stream = FetchStream(conn, response, shown, policy.max_bytes, sock)
        if (
            policy.max_bytes is not None
            and stream.size is not None
            and stream.size > policy.max_bytes
        ):
            stream.close()
            raise TooLarge(f"{shown} is {stream.size} bytes, over the limit of {policy.max_bytes}")
        return stream
    raise FetchFailed(f"{redact(url)} redirects more than {MAX_REDIRECTS} times")


# Checksums


def parse_checksums(text: str, entry: str) -> tuple[str, str] | None:
    """Find ``entry`` in a ``SHA256SUMS``-style file (GNU ``<hex>  <name>`` / ``<hex> *<name>``
    or BSD ``SHA256 (<name>) = <hex>``).

    Returns:
        (algorithm, hex digest) — sha256 or sha512 by the digest's length — or None.
    """
    for line in text.splitlines():
        line = line.strip()
        bsd = re.match(r"^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$", line)
        if bsd:
            name, digest = bsd.group(2), bsd.group(3)
        else:
            gnu = re.match(r"^([0-9a-fA-F]{64}|[0-9a-fA-F]{128}) [ *]?(.+)$", line)
            if not gnu:
                continue
            digest, name = gnu.group(1), gnu.group(2)
        if name.lstrip("./") == entry.lstrip("./"):
            algo = {64: "sha256", 128: "sha512"}.get(len(digest))
            if algo:
                return algo, digest.lower()
    return None


def fetch_checksum(url: str, entry: str, policy: FetchPolicy) -> tuple[str, str]:
    """The expected digest of ``entry`` from a checksum file at ``url`` (fetched like an image).

    Raises:
        UrlRefused, FetchFailed, TooLarge: As :func:`open_url`; FetchFailed also when the file
            has no such entry.
    """
    small = dataclasses.replace(policy, max_bytes=CHECKSUM_FILE_LIMIT)
    with open_url(url, small) as stream:
        text = stream.read_all().decode("utf-8", "replace")
    found = parse_checksums(text, entry)
    if found is None:
        raise FetchFailed(f"{redact(url)} lists no sha256 or sha512 checksum for {entry!r}")
    return found
