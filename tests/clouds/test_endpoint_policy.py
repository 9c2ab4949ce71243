"""The address policy of cloud endpoints: what it refuses, and that a refusal happens before any
connection, for the address actually connected to (a name is resolved once and pinned).

Refusals are proven with real listening sockets on 127.0.0.2 (``RecordingListener``): loopback,
which the tests' development allowance (``GLINT_CLOUD_DEV_LOOPBACK=127.0.0.1``) leaves refused.
Names are faked by replacing ``socket.getaddrinfo`` for one made-up name (no /etc/hosts, no DNS);
every other lookup goes to the real, guarded one.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from glint import config
from glint.clouds import EndpointRefused, RepoConnection, get_driver
from glint.clouds.addresses import EndpointPolicy
from tests.clouds.listener import RecordingListener

DEV = EndpointPolicy(dev_loopback=("127.0.0.1",))
SITE = EndpointPolicy(allow_cidrs=("10.0.0.0/8", "fc00::/7", "100.64.0.0/10"))


@pytest.mark.parametrize(
    "address, policy, refused_as",
    [
        ("169.254.169.254", SITE, "metadata"),
        ("fd00:ec2::254", SITE, "metadata"),  # inside the allowed fc00::/7
        ("100.100.100.200", SITE, "metadata"),  # inside the allowed 100.64/10
        ("168.63.129.16", SITE, "metadata"),  # public, but Azure's host service
        ("169.254.1.1", SITE, "link-local"),
        ("fe80::1", SITE, "link-local"),
        ("127.0.0.1", SITE, "loopback"),
        ("::1", SITE, "loopback"),
        ("127.0.0.2", DEV, "loopback"),  # the development allowance is 127.0.0.1 alone
        ("0.0.0.0", SITE, "unspecified"),
        ("224.0.0.1", SITE, "multicast"),
        ("240.0.0.1", SITE, "reserved"),
        ("10.1.2.3", EndpointPolicy(), "private address, allowed for a cloud endpoint only when"),
        ("192.168.1.1", SITE, "private address, allowed for a cloud endpoint only when"),
        ("100.64.0.1", EndpointPolicy(), "shared"),
        ("10.1.2.3", SITE, None),
        ("fd12::1", SITE, None),
        ("100.64.0.1", SITE, None),
        ("127.0.0.1", DEV, None),
        ("198.51.100.7", EndpointPolicy(), "private"),  # documentation range: not public either
        ("8.8.8.8", EndpointPolicy(), None),
    ],
)
def test_the_policy(address, policy, refused_as):
    reason = policy.why_refused(ipaddress.ip_address(address))
    if refused_as is None:
        assert reason is None
    else:
        assert reason is not None and refused_as in reason, reason


def test_loopback_and_link_local_cannot_be_allowed_by_the_private_allow_list():
    for value, kind in (
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("0.0.0.0/0", "unspecified"),
        ("fe80::/10", "link-local"),
    ):
        with pytest.raises(
            config.ConfigError, match="never allowed for cloud endpoints"
        ) as refused:
            config.cloud_allow_cidrs(value)
        assert kind in str(refused.value)
    assert "GLINT_CLOUD_DEV_LOOPBACK" in str(
        pytest.raises(config.ConfigError, config.cloud_allow_cidrs, "127.0.0.1").value
    )
    assert config.cloud_allow_cidrs("10.0.0.0/8, fc00::/7") == ["10.0.0.0/8", "fc00::/7"]
    with pytest.raises(config.ConfigError, match="loopback addresses only"):
        config.cloud_dev_loopback("10.0.0.1")
    assert config.cloud_dev_loopback("127.0.0.1") == ["127.0.0.1"]
    with pytest.raises(config.ConfigError, match="not a host name"):
        config.cloud_pull_hosts("10.1.2.3")
    assert config.cloud_pull_hosts("Mirror.Example.org.") == ["mirror.example.org"]


@pytest.fixture
def listener():
    server = RecordingListener("127.0.0.2")
    yield server
    server.close()


def password_connection(auth_url: str, policy: EndpointPolicy | None = DEV) -> RepoConnection:
    return RepoConnection(
        auth_url=auth_url,
        username="glint",
        password="the-canary-password",
        project_name="images",
        endpoint_policy=policy,
        connect_timeout=2,
        read_timeout=2,
    )


def check(connection: RepoConnection) -> Exception:
    with get_driver(connection) as driver, pytest.raises(Exception) as failed:
        driver.check()
    return failed.value


def test_a_refused_auth_url_is_never_connected_to(listener):
    refused = check(password_connection(listener.url("/v3")))

    assert isinstance(refused, EndpointRefused), refused
    assert refused.message == (
        f"Glint does not connect to http://127.0.0.2:{listener.port}: 127.0.0.2 is a "
        f"loopback address (this machine), never allowed for a cloud endpoint"
    )
    assert listener.received == [], "nothing was sent, the password least of all"


def test_the_refusal_is_the_same_whatever_the_address_would_answer(listener):
    """No status oracle: a listening port and a closed one give the same answer."""
    listening = check(password_connection(listener.url("/v3"))).message
    listener.close()
    assert check(password_connection(listener.url("/v3"))).message == listening


def test_without_a_policy_the_same_endpoint_is_reached(listener):
    """The control: the listener does record a connection that is made (the policy is what
    stopped the others)."""
    check(password_connection(listener.url("/v3"), policy=None))
    assert listener.received and b"the-canary-password" in listener.received[0]


@pytest.fixture
def fake_name(monkeypatch):
    """``fake_name(name, *addresses)``: ``name`` resolves to these addresses, in turn for each
    lookup when several are given; returns the list of lookups of ``name``."""
    lookups: list[str] = []
    real = socket.getaddrinfo

    def install(name: str, *answers: str) -> list[str]:
        def getaddrinfo(host, port, *args, **kwargs):
            if host != name:
                return real(host, port, *args, **kwargs)
            answer = answers[min(len(lookups), len(answers) - 1)]
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install


def test_a_name_that_resolves_to_a_refused_address_is_refused_at_connect(listener, fake_name):
    lookups = fake_name("keystone.example", "127.0.0.2")
    refused = check(password_connection(listener.url("/v3", host="keystone.example")))

    assert isinstance(refused, EndpointRefused)
    assert "keystone.example (127.0.0.2) is a loopback address" in refused.message
    assert lookups == ["keystone.example"] and listener.received == []


def test_a_name_is_resolved_once_and_the_checked_address_is_connected_to(listener, fake_name):
    """DNS rebinding: the name answers with an allowed address when checked and with a refused
    one afterwards; the connection still goes to the address that was checked."""
    allowed = RecordingListener("127.0.0.1", listener.port)
    try:
        lookups = fake_name("keystone.example", "127.0.0.1", "127.0.0.2")
        check(password_connection(allowed.url("/v3", host="keystone.example")))
    finally:
        allowed.close()
    assert lookups == ["keystone.example"], "one lookup per connection"
    assert listener.received == []
    assert allowed.received and f"keystone.example:{listener.port}".encode() in allowed.received[0]


def test_repos_connect_under_the_deployments_policy(settings, db):
    from tests.repos.helpers import make_repo

    settings.GLINT_CLOUD_ALLOW_CIDRS = ["10.0.0.0/8"]
    settings.GLINT_CLOUD_DEV_LOOPBACK = []
    from glint.accounts.services import add_group

    policy = make_repo(add_group("policy-group")).connection().endpoint_policy
    assert policy == EndpointPolicy(allow_cidrs=("10.0.0.0/8",), dev_loopback=())


def test_a_name_that_does_not_resolve_says_so(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "nowhere.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    failed = check(password_connection("http://nowhere.example:5000/v3"))
    assert failed.code == "endpoint_unreachable", failed
    assert "host name does not resolve" in failed.message
