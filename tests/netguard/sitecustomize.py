"""Refuse every network connection and name lookup that is not loopback (docs/architecture.md
"Tests, devcloud and network safety").

Enabled in every Python process a test starts: the test runner puts this directory on PYTHONPATH
and sets ``GLINT_NETGUARD=1``, so Python imports this module at start-up. libc name lookups would
otherwise reach the machine's resolver, so both ``getaddrinfo`` and ``connect`` are guarded.
"""

import ipaddress
import os
import socket

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NetworkGuardError(OSError):
    """A test tried to reach beyond this machine."""


def _is_loopback(host) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means a local bind
    if isinstance(host, bytes):
        host = host.decode("idna", "replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in LOOPBACK_NAMES or host == "":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def install() -> None:
    if getattr(socket, "_glint_netguard", False):
        return
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            raise socket.gaierror(
                socket.EAI_NONAME, f"network guard: lookup of {host!r} refused in tests"
            )
        return real_getaddrinfo(host, *args, **kwargs)

    def _check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NetworkGuardError(f"network guard: connection to {address[0]!r} refused in tests")

    def guarded_connect(self, address):
        _check(self, address)
        return real_connect(self, address)

    def guarded_connect_ex(self, address):
        _check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket._glint_netguard = True


if os.environ.get("GLINT_NETGUARD") == "1":
    install()
