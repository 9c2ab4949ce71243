"""Which addresses Glint may connect to, checked at the moment it connects.

Two kinds of outgoing connection are made on a person's behalf and so must never reach what only
Glint can reach (the cloud metadata service, loopback admin ports, the private network): web links
(:mod:`glint.transfers.fetch`) and cloud endpoints (a repo's Keystone, every endpoint its catalog
names, later other cloud kinds' endpoints). Both use the parts here:

- :func:`literal` reads an IP literal in any spelling libc accepts;
- :func:`why_not_public` names what kind of non-public address an address is;
- :func:`resolve` turns a host into addresses exactly once and checks every answer, so the
  caller connects to the address that was checked (*pinned*): a DNS answer that changes between
  the check and the connect (DNS rebinding) cannot redirect the connection.

The policy for cloud endpoints is :class:`EndpointPolicy`; :func:`checked_session` gives a
``requests`` session that applies it to every connection it opens, and
:class:`CheckedPoolManager` does the same for a library that pools its urllib3 connections
itself (botocore, for EC2). No Django here: the caller builds the policy from its settings.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import socket
import sys
from collections.abc import Callable

import requests
import urllib3
from keystoneauth1.session import TCPKeepAliveAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import connection as urllib3_connection

from glint.clouds.errors import EndpointRefused

__all__ = [
    "Address",
    "AddressRefused",
    "CheckedPoolManager",
    "EndpointPolicy",
    "METADATA_ADDRESSES",
    "NameNotResolved",
    "checked_session",
    "literal",
    "resolve",
    "why_not_public",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata and host services, some of them inside ranges an admin may allow (fd00::/8,
#: 100.64/10) or even public (Azure's): AWS, GCP, OpenStack, Oracle (169.254.169.254), AWS ECS
#: and EKS (169.254.170.2, 169.254.170.23, fd00:ec2::23), AWS IPv6 (fd00:ec2::254), Alibaba
#: (100.100.100.200), Azure's wire server (168.63.129.16), Oracle Cloud Classic (192.0.0.192).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)

#: What libc's inet_aton takes for an IPv4 address: 1 to 4 parts, each decimal, octal or hex.
_NUMERIC_HOST = re.compile(r"^((0x[0-9a-f]*|[0-9]+)\.){0,3}(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class AddressRefused(Exception):
    """``host`` is (or resolves to) ``address``, which the check refused for ``reason``."""

    def __init__(self, host: str, address: Address, reason: str):
        super().__init__(f"{host} ({address}): {reason}")
        self.host, self.address, self.reason = host, address, reason

    @property
    def shown(self) -> str:
        """The host as written, with the address it resolved to when that differs."""
        return self.host if self.host == str(self.address) else f"{self.host} ({self.address})"


class NameNotResolved(Exception):
    """The host name has no address (or the lookup failed); the message says which."""


def literal(host: str) -> Address | None:
    """The address an IP literal names, in any spelling; None for a name.

    An IPv6 literal that embeds an IPv4 address (IPv4-mapped, 6to4, Teredo) is the IPv4 address.

    Raises:
        ValueError: ``host`` looks numeric but is no address (``1.2.3.4.5``, ``0x1g``).
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if not _NUMERIC_HOST.match(host):
            return None
        try:  # libc's spellings: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise ValueError(f"{host!r} is not a valid address") from None
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (
            address.ipv4_mapped,
            address.sixtofour,
            address.teredo[1] if address.teredo else None,
        ):
            if embedded is not None:
                return embedded
    return address


def why_not_public(address: Address) -> str | None:
    """What kind of non-public address ``address`` is (``"loopback"``, ``"private"`` …), or
    None for a globally routable one."""
    for test, what in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(address, test):
            return what
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if not address.is_global:
        return "not globally routable"
    return None


def resolve(host: str, port: int, why_refused: Callable[[Address], str | None]) -> Address:
    """The one address to connect to for ``host``: a literal as it is, a name looked up once.

    Every answer of a name must pass ``why_refused`` (None: allowed): a name that also points
    inside is refused as a whole, so which answer a later connect would pick does not matter.

    Raises:
        AddressRefused: An address (any of a name's) that ``why_refused`` refuses.
        NameNotResolved: The name does not resolve.
        ValueError: A numeric host that is no address.
    """
    address = literal(host)
    if address is not None:
        candidates = [address]
    else:
        try:
            answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise NameNotResolved(f"cannot resolve {host}: {exc}") from None
        candidates = [a for a in (literal(info[4][0]) for info in answers) if a is not None]
        if not candidates:
            raise NameNotResolved(f"{host} has no address")
    for candidate in candidates:
        reason = why_refused(candidate)
        if reason is not None:
            raise AddressRefused(host, candidate, reason)
    return candidates[0]


# Cloud endpoints


def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


@dataclasses.dataclass(frozen=True)
class EndpointPolicy:
    """The addresses a cloud endpoint may have.

    Metadata, link-local, multicast, unspecified and reserved addresses are always refused, and
    so is loopback (the machine Glint runs on) except for development. Private and other
    non-public ranges (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) are refused unless
    an admin allows them: real sites do run Keystone on 10.x.

    Fields:
        allow_cidrs: Non-public ranges that cloud endpoints may be in (``cloud_allow_cidrs``).
        dev_loopback: Loopback ranges allowed for development only (``cloud_dev_loopback``):
            the devcloud, the tests and the demo run their clouds on 127.0.0.1.
    """

    allow_cidrs: tuple[str, ...] = ()
    dev_loopback: tuple[str, ...] = ()

    def why_refused(self, address: Address) -> str | None:
        """Why a connection to ``address`` is refused, or None when it is allowed."""
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address, never allowed for a cloud endpoint"
        kind = why_not_public(address)
        if kind is None:
            return None
        if kind == "loopback":
            if any(address in network for network in _networks(self.dev_loopback)):
                return None
            return "a loopback address (this machine), never allowed for a cloud endpoint"
        if kind in ("private", "shared (carrier-grade NAT)", "not globally routable") and any(
            address in network for network in _networks(self.allow_cidrs)
        ):
            return None
        if kind in ("link-local", "multicast", "unspecified", "reserved"):
            return f"a {kind} address, never allowed for a cloud endpoint"
        return (
            f"a {kind} address, allowed for a cloud endpoint only when an admin lists its "
            f"range in GLINT_CLOUD_ALLOW_CIDRS"
        )

    def resolve(self, host: str, port: int, url: str) -> Address:
        """The checked address to connect to for ``host`` (see :func:`resolve`).

        Raises:
            EndpointRefused: The address (or one of the name's) is refused; names ``url``.
            OSError: The name does not resolve (``socket.gaierror``, as a plain connect would).
        """
        try:
            return resolve(host, port, self.why_refused)
        except AddressRefused as exc:
            raise EndpointRefused(
                f"Glint does not connect to {url}: {exc.shown} is {exc.reason}",
                url=url,
                reason=f"{exc.shown} is {exc.reason}",
            ) from None
        except ValueError as exc:
            raise EndpointRefused(
                f"Glint does not connect to {url}: {exc}", url=url, reason=str(exc)
            ) from None
        except NameNotResolved as exc:
            raise socket.gaierror(socket.EAI_NONAME, str(exc)) from None


class _CheckedConnection(urllib3.connection.HTTPConnection):
    """A urllib3 connection that opens its socket to the address its policy checked, while the
    name stays in the ``Host`` header (and, for https, in SNI and the certificate check)."""

    def __init__(self, *args, endpoint_policy: EndpointPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self._policy = endpoint_policy

    def _new_conn(self) -> socket.socket:
        # urllib3's own _new_conn, with the checked address in place of the name. A refusal
        # (EndpointRefused) is no OSError: it passes through urllib3 and requests unretried.
        scheme = "https" if isinstance(self, urllib3.connection.HTTPSConnection) else "http"
        shown = f"[{self.host}]" if ":" in self.host else self.host
        try:
            address = self._policy.resolve(self.host, self.port, f"{scheme}://{shown}:{self.port}")
            sock = urllib3_connection.create_connection(
                (str(address), self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


@functools.cache
def _checked(connection_cls: type) -> type:
    """``connection_cls`` (urllib3's, or a library's subclass such as botocore's) with its
    socket opened through the policy."""
    return type(f"Checked{connection_cls.__name__}", (_CheckedConnection, connection_cls), {})


class CheckedPoolManager(urllib3.PoolManager):
    """A pool manager whose pools open their sockets through ``endpoint_policy``, keeping
    the connection class each pool would use otherwise (so a library that sets its own pool
    classes, like botocore, keeps its connections' behaviour)."""

    def __init__(self, endpoint_policy: EndpointPolicy, **kwargs):
        super().__init__(**kwargs)
        self._policy = endpoint_policy

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _checked(pool.ConnectionCls)
        pool.conn_kw["endpoint_policy"] = self._policy
        return pool


class _CheckedAdapter(TCPKeepAliveAdapter):
    """keystoneauth's adapter (TCP keep-alive) with every connection checked, and never through
    a proxy: a proxy would resolve the name itself, past the check."""

    def __init__(self, policy: EndpointPolicy):
        self._policy = policy
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)  # computes the keep-alive socket options
        self.poolmanager = CheckedPoolManager(
            self._policy, num_pools=self._pool_connections, **self.poolmanager.connection_pool_kw
        )

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={}
        )


def checked_session(policy: EndpointPolicy) -> requests.Session:
    """A ``requests`` session whose every connection (redirects included) goes through
    ``policy``; pass it to keystoneauth's ``Session(session=...)``."""
    session = requests.Session()
    adapter = _CheckedAdapter(policy)
    for scheme in ("https://", "http://"):
        session.mount(scheme, adapter)
    return session
