"""Fixtures for the driver conformance suite: which clouds it runs against, and cleanup.

The suite is written against :class:`glint.clouds.CloudDriver` only. Each *variant* is one
driver connection to a real devcloud cloud; together the variants cover HTTP and TLS, password
and application-credential auth, both Keystones, and the sha512 and sha256 Glances, while each
variant stays one 50 MiB transfer plus small images (``test_variants_cover_the_matrix`` checks
the coverage, so a devcloud layout change cannot silently shrink it). The EC2 kind is one more
variant, devcloud's EC2 peer, with its :class:`~tests.clouds.helpers.Ec2Kit`: where an operation
differs by kind (EC2 writes in one step, raw only) the kit adapts and the assertion stays.

A test of what only some kinds have (Glance's visibilities, a record before its data) says so
with ``@pytest.mark.kinds("openstack", why=...)``: it is not collected for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from glint.clouds import CloudDriver, NotFound, get_driver
from tests.clouds.helpers import (
    ALL_VARIANTS,
    Target,
    Variant,
    connection_for,
    glance_of,
    kit_for,
    unique_name,
)
from tests.ec2_peer import peer_connection


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kinds(*kinds, why): a conformance test of what only those cloud kinds have"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the runs of a ``kinds``-marked test against a kind it does not describe."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("kinds")
        variant = getattr(item, "callspec", None) and item.callspec.params.get("target")
        if not isinstance(variant, Variant):
            kept.append(item)
            continue
        if marker and variant.kind not in marker.args:
            dropped.append(item)
            continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=ALL_VARIANTS, ids=[v.label for v in ALL_VARIANTS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    variant: Variant = request.param
    dc = request.getfixturevalue(variant.fixture)
    if variant.kind == "ec2":
        yield from _ec2_target(variant, dc)
        return
    names = set(dc.cloud_names())
    if variant.cloud not in names:
        pytest.fail(f"devcloud has no cloud {variant.cloud!r} (has {sorted(names)})")
    driver = get_driver(connection_for(dc, variant.cloud))
    other = get_driver(connection_for(dc, variant.other)) if variant.other in names else None
    yield Target(
        variant=variant,
        dc=dc,
        connection=driver.connection,
        driver=driver,
        other_cloud=variant.other if other else None,
        other=other,
        hash_algo=dc.hash_algo(glance_of(variant.cloud)),
        kit=kit_for(variant, dc),
    )
    driver.close()
    if other:
        other.close()


def _ec2_target(variant: Variant, dc) -> Iterator[Target]:
    """The peer's one account: no second one owns images shared with it here."""
    driver = get_driver(peer_connection(dc.ec2_peer))
    yield Target(
        variant=variant,
        dc=dc,
        connection=driver.connection,
        driver=driver,
        other_cloud=None,
        other=None,
        hash_algo=None,
        kit=kit_for(variant, dc),
    )
    driver.close()


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
    """``new_image(tag, driver=None, **fields)`` starts an image (raw/bare unless told) that is
    deleted after the test: a :class:`~tests.clouds.helpers.Write` whose ``write`` gives it its
    data (on OpenStack its record already exists, ``.record``)."""

    def make(tag: str, driver: CloudDriver | None = None, **fields: Any):
        fields = {
            "name": unique_name(tag),
            "disk_format": "raw",
            "container_format": "bare",
            **fields,
        }
        return target.kit.start(driver or target.driver, fields, cleanup)

    return make


@pytest.fixture
def new_record(new_image) -> Callable[..., Any]:
    """``new_record(tag, driver=None, **fields)``: the record of a new image, with a little data
    where the kind has no record without it (EC2)."""

    def make(tag: str, driver: CloudDriver | None = None, **fields: Any):
        started = new_image(tag, driver=driver, **fields)
        return started.record or started.write([b"glint" * 100])

    return make
