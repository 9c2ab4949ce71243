"""Slow down one real target's upload.

The devcloud's catalog points every client at the real Glance port, so a TCP proxy in between
would not be used; instead the target driver's upload body is paced. The cloud on the other
side is the real Glance: only the rate at which it is fed is limited.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from glint.clouds import CloudDriver


def throttle_writes(driver: CloudDriver, bytes_per_second: float) -> CloudDriver:
    """Make ``driver.write_data`` send at most ``bytes_per_second``; returns the driver."""
    write = driver.write_data

    def paced(chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            time.sleep(len(chunk) / bytes_per_second)
            yield chunk

    def write_data(image_id, chunks, size=None):
        return write(image_id, paced(chunks), size=size)

    driver.write_data = write_data
    return driver
