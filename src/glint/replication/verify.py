"""Check a target's stored copy against what was sent, and tell when two images hold the same
content.

A cloud hashes what it received itself; comparing its digest (same algorithm) or its md5
``checksum`` and its size with the digests computed while streaming -- or with the digests the
source cloud recorded, when the target hashes with the source's algorithm -- proves the bytes
landed intact without reading them back. Only when the target reports neither is the copy read
back and hashed.
"""

from __future__ import annotations

import threading
import time

from glint.clouds import CloudDriver, ImageRecord
from glint.replication.errors import (
    CopyCancelled,
    PullFailed,
    TargetVerificationFailed,
    VerificationTimeout,
)
from glint.replication.hashing import MultiHasher

__all__ = ["wait_active", "check_copy", "check_size", "same_content"]

_MAX_POLL_INTERVAL = 5.0

#: The image property Glance sets to the stores an import (e.g. ``web-download``) failed for.
FAILED_IMPORT = "os_glance_failed_import"


def wait_active(
    driver: CloudDriver,
    image_id: str,
    *,
    record: ImageRecord | None = None,
    timeout: float,
    interval: float,
    cancel: threading.Event | None = None,
) -> ImageRecord:
    """Poll an image until it is ``active``, with back-off and a deadline.

    Raises:
        VerificationTimeout: Still not active at the deadline.
        TargetVerificationFailed: The cloud marked it ``killed``/``deleted`` (it refused the data).
        PullFailed: The cloud's own import of the data (``web-download``) failed: Glance then
            leaves the image ``queued`` and names the store in ``os_glance_failed_import``.
        CopyCancelled: ``cancel`` was set.
    """
    deadline = time.monotonic() + timeout
    while True:
        if record is not None:
            if record.status == "active":
                return record
            if record.status in ("killed", "deleted", "pending_delete"):
                raise TargetVerificationFailed(
                    f"image {image_id} went {record.status} after its upload"
                )
            if record.properties.get(FAILED_IMPORT):
                raise PullFailed(
                    f"the target cloud could not fetch the image from the link itself (its import "
                    f"into store {record.properties[FAILED_IMPORT]!r} failed); the retry streams "
                    f"it through Glint"
                )
        if time.monotonic() >= deadline:
            status = record.status if record else "unknown"
            raise VerificationTimeout(
                f"image {image_id} is still {status} {timeout:.0f} s after its upload"
            )
        if cancel is not None and cancel.wait(interval):
            raise CopyCancelled("the copy was cancelled while waiting for the target")
        if cancel is None:
            time.sleep(interval)
        interval = min(interval * 2, _MAX_POLL_INTERVAL)
        record = driver.get_image(image_id)


def check_copy(
    driver: CloudDriver,
    record: ImageRecord,
    size: int | None,
    digests: dict[str, str],
    *,
    of_source: bool = False,
) -> str:
    """Check an active target image against the stream that was sent.

    Args:
        driver: The target's driver (for a read-back, only when needed).
        record: The target image, active.
        size: Bytes sent (None: not known, as for a link the cloud fetched itself).
        digests: Digests of the bytes sent, by algorithm (at least one).
        of_source: ``digests`` are what the source cloud recorded, not what Glint computed.

    Returns:
        The algorithm the copy was proven by.

    Raises:
        TargetVerificationFailed: Size or hash differ.
    """
    what = f"target image {record.id}"
    check_size(record, size)
    algo, stored = record.hash_algo, record.hash_value
    if algo and stored and algo in digests:
        expected = digests[algo]
    elif record.checksum and "md5" in digests:
        algo, stored, expected = "md5", record.checksum, digests["md5"]
    else:
        # The target's algorithm was not computed on the way (it was not known up front):
        # read the copy back and compare a digest that is known (sha256 when there is one).
        algo = "sha256" if "sha256" in digests else next(iter(digests))
        expected = digests[algo]
        stored = _read_back(driver, record.id, algo)
    if stored.lower() != expected:
        if of_source:
            raise TargetVerificationFailed(
                f"{what} stored {algo} {stored} but the source cloud recorded {expected} for "
                f"its bytes; the source's data or the copy is damaged, and the copy has been "
                f"deleted"
            )
        raise TargetVerificationFailed(
            f"{what} stored {algo} {stored} but the bytes sent hash to {expected}; the copy "
            f"was damaged on the way and has been deleted"
        )
    return algo


def check_size(record: ImageRecord, size: int | None) -> None:
    """Raise TargetVerificationFailed when the target holds another number of bytes than sent."""
    if record.size is not None and size is not None and record.size != size:
        raise TargetVerificationFailed(
            f"target image {record.id} holds {record.size} bytes but {size} were sent"
        )


def _read_back(driver: CloudDriver, image_id: str, algo: str) -> str:
    with MultiHasher([algo]) as hasher, driver.open_read(image_id) as reader:
        for chunk in reader:
            hasher.update(chunk)
    return hasher.hexdigests()[algo]


def same_content(a: ImageRecord, b: ImageRecord) -> bool:
    """True when two images provably hold the same bytes (same size and a matching digest:
    the cloud's own hash in a shared algorithm, Glint's sha256 marker, or md5)."""
    if a.size is not None and b.size is not None and a.size != b.size:
        return False
    if a.hash_algo and a.hash_algo == b.hash_algo and a.hash_value and b.hash_value:
        return a.hash_value.lower() == b.hash_value.lower()
    sha_a, sha_b = a.properties.get("glint_sha256"), b.properties.get("glint_sha256")
    if sha_a and sha_b:
        return sha_a == sha_b
    return bool(a.checksum and a.checksum == b.checksum)
