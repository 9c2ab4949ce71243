"""Test images on the devcloud: generated on the fly (never held in memory), and found again."""

from __future__ import annotations

import random

from glint.clouds import CHUNK_SIZE, RepoConnection, get_driver

MOVING = (
    96 * 2**20
)  # big enough that a copy is still writing when a test acts (kills, stops, cancels)


def driver_for(devcloud, cloud: str):
    return get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config(cloud)))


def random_chunks(seed: str, size: int):
    generator = random.Random(seed)
    left = size
    while left:
        step = min(CHUNK_SIZE, left)
        yield generator.randbytes(step)
        left -= step


def upload(devcloud, cloud: str, name: str, size: int, seed: str | None = None) -> str:
    """Upload ``size`` pseudo-random bytes (the same bytes for the same seed) as a raw image."""
    with driver_for(devcloud, cloud) as driver:
        record = driver.create_and_write(
            {
                "name": name,
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "private",
            },
            random_chunks(seed or name, size),
            size=size,
        )
    return record.id


def images_named(devcloud, name: str) -> dict[str, list]:
    """``{cloud: [ImageRecord]}`` of every image called ``name`` in each devcloud cloud."""
    found = {}
    for cloud in ("devcloud-1", "devcloud-2", "devcloud-3"):
        with driver_for(devcloud, cloud) as driver:
            found[cloud] = [image for image in driver.list_images() if image.name == name]
    return found


def delete_named(devcloud, name: str) -> None:
    for cloud, records in images_named(devcloud, name).items():
        with driver_for(devcloud, cloud) as driver:
            for record in records:
                driver.delete(record.id)


def assert_one_verified_copy_each(
    devcloud, name: str, clouds=("devcloud-1", "devcloud-2", "devcloud-3")
):
    """Exactly one active copy per cloud, all with the source's md5, and nothing half-made
    anywhere."""
    found = images_named(devcloud, name)
    for cloud in clouds:
        assert [image.status for image in found[cloud]] == ["active"], f"{cloud}: {found[cloud]}"
    assert len({found[cloud][0].checksum for cloud in clouds}) == 1, "the copies' bytes differ"
    stuck = [
        (cloud, i.id, i.status)
        for cloud, images in found.items()
        for i in images
        if i.status != "active"
    ]
    assert not stuck, f"half-made images left behind: {stuck}"
