"""Tokens shared by drivers with the same credentials (glint.clouds.tokens), and what else a
driver does not ask the cloud again, against devcloud.

The stale-token tests plant a damaged token state in the cache: a Keystone revocation is hidden
from Glance by its own token cache for minutes, and a Glance cannot be moved while a token
naming it is alive, so these two faults are staged rather than provoked.
"""

from __future__ import annotations

import json

import pytest

from glint.clouds import get_driver, openstack
from glint.clouds.tokens import TOKENS
from tests.clouds.helpers import connection_for, unique_name
from tests.live import free_port

pytestmark = pytest.mark.devcloud


@pytest.fixture(autouse=True)
def empty_cache():
    TOKENS.clear()
    yield
    TOKENS.clear()


def _token(driver) -> str:
    return driver._session.get_token()  # OpenStack-specific, like test_auth's


def _plant(driver, change) -> None:
    """Leave in the cache ``driver``'s token state as ``change(state)`` makes it."""
    state = json.loads(driver._auth.get_auth_state())
    change(state)
    driver._auth.set_auth_state(json.dumps(state))
    TOKENS.remember(driver._auth)


def test_drivers_with_the_same_credentials_share_one_token_but_a_check_gets_its_own(devcloud):
    with get_driver(connection_for(devcloud, "devcloud-1")) as first:
        first.list_images()
        token = _token(first)
    with get_driver(connection_for(devcloud, "devcloud-1")) as second:
        second.list_images()
        assert _token(second) == token  # no new authentication
        assert second.check().project_id
        assert _token(second) != token  # checking the credentials authenticated anew
        checked = _token(second)
    with get_driver(connection_for(devcloud, "devcloud-2")) as other:
        other.list_images()
        assert _token(other) not in (token, checked)  # other credentials, other token
    with get_driver(connection_for(devcloud, "devcloud-1")) as third:
        assert _token(third) == checked  # the newest token is the one kept


def test_the_project_id_comes_from_the_shared_token(devcloud):
    """The engine asks every target for its project id (its own images from others'): that
    takes no new token, where a check (which tests the credentials) takes one."""
    with get_driver(connection_for(devcloud, "devcloud-1")) as first:
        project = first.check().project_id
        token = _token(first)
    before = len(devcloud.keystone_requests("devcloud-1"))
    with get_driver(connection_for(devcloud, "devcloud-1")) as second:
        assert second.project_id() == project
        assert _token(second) == token
    asked = devcloud.keystone_requests("devcloud-1")[before:]
    assert not [line for line in asked if line.startswith("POST /v3/auth/tokens")]


def test_an_endpoints_import_methods_and_stores_are_asked_once_in_a_while(devcloud, monkeypatch):
    """A copy asks every target's capabilities; what an endpoint said of its import methods and
    stores serves the drivers after it for DISCOVERY_SECONDS, then it is asked again."""
    monkeypatch.setattr(openstack, "_DISCOVERED", {})

    def discovery_requests() -> int:
        return sum(
            line.startswith(("GET /v2/info/import", "GET /v2/info/stores"))
            for line in devcloud.glance_requests("devcloud-1")
        )

    with get_driver(connection_for(devcloud, "devcloud-1")) as first:
        caps = first.capabilities()
    asked = discovery_requests()
    with get_driver(connection_for(devcloud, "devcloud-1")) as second:
        again = second.capabilities()
    assert again.import_methods == caps.import_methods and again.stores == caps.stores
    assert discovery_requests() == asked
    monkeypatch.setattr(openstack, "DISCOVERY_SECONDS", 0.0)
    with get_driver(connection_for(devcloud, "devcloud-1")) as third:
        assert third.capabilities().import_methods == caps.import_methods
    assert discovery_requests() == asked + 2


def test_a_reused_token_the_cloud_rejects_is_replaced(devcloud):
    with get_driver(connection_for(devcloud, "devcloud-1")) as first:
        first.list_images()
        _plant(first, lambda state: state.update(auth_token="gAAAAA-revoked-or-unknown"))
    with get_driver(connection_for(devcloud, "devcloud-1")) as second:
        second.list_images()  # Glance answers 401; keystoneauth authenticates and repeats
        assert _token(second) != "gAAAAA-revoked-or-unknown"
    with get_driver(connection_for(devcloud, "devcloud-1")) as third:
        assert _token(third) == _token(second)


@pytest.fixture
def janitor(devcloud):  # request it before ``cleanup``, which needs it open
    with get_driver(connection_for(devcloud, "devcloud-1")) as driver:
        yield driver


def test_a_reused_token_whose_image_endpoint_moved_is_replaced(devcloud, janitor, cleanup):
    closed = f"http://127.0.0.1:{free_port()}"

    def move_image_endpoint(state):
        for service in state["body"]["token"]["catalog"]:
            if service["type"] == "image":
                for endpoint in service["endpoints"]:
                    endpoint["url"] = closed

    with get_driver(connection_for(devcloud, "devcloud-1")) as first:
        first.list_images()
        _plant(first, move_image_endpoint)
    with get_driver(connection_for(devcloud, "devcloud-1")) as second:
        # A POST, the first call of a copy's target: it never left, so repeating it is safe.
        record = second.create_image(
            {"name": unique_name("moved"), "disk_format": "raw", "container_format": "bare"}
        )
        cleanup(janitor, record.id)
        assert second.get_image(record.id).status == "queued"
    with get_driver(connection_for(devcloud, "devcloud-1")) as third:
        assert any(
            image.id == record.id for image in third.list_images()
        )  # the kept token is the new one
