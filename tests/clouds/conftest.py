"""Fixtures for the driver conformance suite: which clouds it runs against, and cleanup.

The suite is written against :class:`glint.clouds.CloudDriver` only. Each *variant* is one
driver connection to a real devcloud cloud; together the variants cover HTTP and TLS, password
and application-credential auth, both Keystones, and the sha512 and sha256 Glances, while each
variant stays one 50 MiB transfer plus small images (``test_variants_cover_the_matrix`` checks
the coverage, so a devcloud layout change cannot silently shrink it). A future cloud kind adds
its variants and a :class:`Kit` here; the tests stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from glint.clouds import CloudDriver, NotFound, get_driver
from tests.clouds.helpers import (
    VARIANTS,
    Kit,
    Target,
    Variant,
    connection_for,
    glance_of,
    unique_name,
)


@pytest.fixture(scope="session", params=VARIANTS, ids=[v.label for v in VARIANTS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    variant: Variant = request.param
    dc = request.getfixturevalue(variant.fixture)
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
        kit=Kit(dc),
    )
    driver.close()
    if other:
        other.close()


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
        fields = {
            "name": unique_name(tag),
            "disk_format": "raw",
            "container_format": "bare",
            **fields,
        }
        record = driver.create_image(fields)
        cleanup(driver, record.id)
        return record

    return make
