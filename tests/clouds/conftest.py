"""Fixtures for the driver conformance suite: which clouds it runs against, and cleanup.

The suite is written against :class:`glint.clouds.CloudDriver` only. Each *variant* is one
driver connection to a real devcloud cloud; together the variants cover HTTP and TLS, password
and application-credential auth, both Keystones, and the sha512 and sha256 Glances, while each
variant stays one 50 MiB transfer plus small images (``test_variants_cover_the_matrix`` checks
the coverage, so a devcloud layout change cannot silently shrink it). A future cloud kind adds
its variants and a :class:`Kit` here; the tests stay as they are.
"""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from glint.clouds import CloudDriver, NotFound, RepoConnection, get_driver


@dataclasses.dataclass(frozen=True)
class Variant:
    """One conformance run: a cloud entry of a devcloud fixture, and a second project on the
    same cloud that owns the images shared with (or published to) the first."""

    label: str
    fixture: str
    cloud: str
    other: str


VARIANTS = [
    Variant("http-password-sha512", "devcloud", "devcloud-1", "devcloud-1-p2"),
    Variant("http-appcred-sha512", "devcloud", "devcloud-2-appcred", "devcloud-2-p2-appcred"),
    Variant("http-appcred-sha256", "devcloud", "devcloud-3-appcred", "devcloud-3-p2"),
    Variant("tls-password", "devcloud_tls", "devcloud-1", "devcloud-1-p2"),
]


class Kit:
    """What the tests need from a cloud kind beyond the protocol (setting up cross-project
    cases). Written with openstacksdk, independently of the driver under test."""

    def __init__(self, dc: Any):
        self.dc = dc

    def sdk(self, cloud: str) -> Any:
        import openstack.config
        import openstack.connection

        region = openstack.config.OpenStackConfig(
            config_files=[str(self.dc.clouds_yaml)], load_envvars=False).get_one(cloud=cloud)
        return openstack.connection.Connection(config=region)

    def share(self, owner_cloud: str, image_id: str, member_project_id: str) -> None:
        """Share an image with another project; its membership stays ``pending``."""
        with warnings.catch_warnings():  # the SDK's own deprecation notices, not ours
            warnings.simplefilter("ignore")
            conn = self.sdk(owner_cloud)
            try:
                conn.image.add_member(image_id, member_id=member_project_id)
            finally:
                conn.close()


@dataclasses.dataclass
class Target:
    """A driver under test and what the tests need to know about its cloud."""

    variant: Variant
    dc: Any
    connection: RepoConnection
    driver: CloudDriver
    other_cloud: str | None
    other: CloudDriver | None
    hash_algo: str
    kit: Kit


def connection_for(dc: Any, cloud: str, **overrides: Any) -> RepoConnection:
    """The driver connection for one clouds.yaml entry of a devcloud."""
    return RepoConnection.from_clouds_yaml(dc.cloud_config(cloud), **overrides)


def glance_of(cloud: str) -> str:
    """``devcloud-3-p2-appcred`` -> ``devcloud-3``: the Glance a clouds.yaml entry uses."""
    return "-".join(cloud.split("-")[:2])


@pytest.fixture(scope="session", params=VARIANTS, ids=[v.label for v in VARIANTS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    variant: Variant = request.param
    dc = request.getfixturevalue(variant.fixture)
    names = set(dc.cloud_names())
    if variant.cloud not in names:
        pytest.fail(f"devcloud has no cloud {variant.cloud!r} (has {sorted(names)})")
    driver = get_driver(connection_for(dc, variant.cloud))
    other = get_driver(connection_for(dc, variant.other)) if variant.other in names else None
    yield Target(variant=variant, dc=dc, connection=driver.connection, driver=driver,
                 other_cloud=variant.other if other else None, other=other,
                 hash_algo=dc.hash_algo(glance_of(variant.cloud)), kit=Kit(dc))
    driver.close()
    if other:
        other.close()


def unique_name(tag: str) -> str:
    return f"glint-test-{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cleanup() -> Iterator[Callable[[CloudDriver, str], str]]:
    """``cleanup(driver, image_id)`` deletes the image after the test, protected or not."""
    created: list[tuple[CloudDriver, str]] = []

    def track(driver: CloudDriver, image_id: str) -> str:
        created.append((driver, image_id))
        return image_id

    yield track
    failures = []
    for driver, image_id in reversed(created):
        try:
            if driver.get_image(image_id).protected:
                driver.set_properties(image_id, set={"protected": False})
            driver.delete(image_id)
        except NotFound:
            pass
        except Exception as exc:  # keep cleaning; report at the end
            failures.append(f"{image_id}: {exc}")
    assert not failures, f"could not clean up images: {failures}"


@pytest.fixture
def new_image(target: Target, cleanup: Callable[[CloudDriver, str], str]) -> Callable[..., Any]:
    """``new_image(tag, driver=None, **fields)`` creates a record (raw/bare unless told) that is
    deleted after the test."""

    def make(tag: str, driver: CloudDriver | None = None, **fields: Any):
        driver = driver or target.driver
        fields = {"name": unique_name(tag), "disk_format": "raw", "container_format": "bare",
                  **fields}
        record = driver.create_image(fields)
        cleanup(driver, record.id)
        return record

    return make
