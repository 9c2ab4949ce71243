"""Test images on the devcloud: generated on the fly (never held in memory), and found again."""

from __future__ import annotations

import random

from glint.clouds import CHUNK_SIZE, RepoConnection, get_driver


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
            {"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private"},
            random_chunks(seed or name, size), size=size)
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
