"""Hash a stream once per algorithm that verification needs, and judge the source by it.

sha256 is always computed: it names the content in Glint (``glint_sha256``, the cache key).
Beyond that, every extra algorithm costs CPU on each byte (here md5 ~720 MiB/s, sha512
~800 MiB/s, sha256 ~1.7 GiB/s per core), so the copier asks only for the source's own algorithm
(to check the source) and the algorithms the targets will report (to check each copy) -- and
for neither when the clouds prove the copy themselves (:func:`clouds_prove`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from glint.clouds import ImageRecord
from glint.replication.errors import SourceVerificationFailed

__all__ = [
    "MultiHasher",
    "algorithms_for",
    "check_source",
    "clouds_prove",
    "stored_digests",
    "GLANCE_DEFAULT_ALGO",
]

#: What a Glance hashes with unless configured otherwise (``hashing_algorithm``); assumed for a
#: target whose algorithm cannot be learnt before the copy (an empty project).
GLANCE_DEFAULT_ALGO = "sha512"


def algorithms_for(source: ImageRecord, target_algos: Iterable[str | None]) -> tuple[str, ...]:
    """The algorithms to compute while copying ``source`` to targets hashing with
    ``target_algos`` (None: not known yet)."""
    wanted = ["sha256"]
    if source.hash_algo and source.hash_value:
        wanted.append(source.hash_algo)
    elif source.checksum:
        wanted.append("md5")
    wanted += [algo or GLANCE_DEFAULT_ALGO for algo in target_algos]
    usable = [a for a in dict.fromkeys(wanted) if a in hashlib.algorithms_available]
    return tuple(usable)


def clouds_prove(source: ImageRecord, target_algos: Iterable[str | None]) -> bool:
    """Whether the clouds' own hashes prove every target's copy without Glint hashing the stream
    with their algorithm: the source cloud recorded a digest when the image was uploaded, and
    every target (None: not known yet, assumed :data:`GLANCE_DEFAULT_ALGO`) hashes what it
    receives with that same algorithm, so a target reporting the source's value holds the
    source's bytes end to end. Glint then computes only sha256, its content key."""
    algos = [algo or GLANCE_DEFAULT_ALGO for algo in target_algos]
    return bool(source.hash_algo and source.hash_value and algos) and all(
        algo == source.hash_algo for algo in algos
    )


def stored_digests(record: ImageRecord) -> dict[str, str]:
    """The digests a cloud says an image's bytes have (what a copy proven by the clouds, or
    pulled by one, must match)."""
    digests = {}
    if record.hash_algo and record.hash_value:
        digests[record.hash_algo] = record.hash_value.lower()
    if record.checksum:
        digests["md5"] = record.checksum.lower()
    return digests


class MultiHasher:
    """Several digests of one stream, each algorithm in a thread of its own.

    hashlib releases the GIL while hashing buffers larger than 2 KiB, so with spare cores the
    algorithms run side by side and a stream is bounded by its slowest algorithm rather than by
    their sum (sha256 + sha512 + md5 in one thread: ~280 MiB/s here, in three: ~420 on 2 cores).
    The caller's thread hashes the first algorithm; ``close()`` (or ``with``) ends the helpers.
    """

    def __init__(self, algorithms: Iterable[str]):
        self._hashes = {name: hashlib.new(name) for name in algorithms}
        self.size = 0
        helpers = len(self._hashes) - 1
        self._pool = (
            ThreadPoolExecutor(helpers, thread_name_prefix="glint-hash") if helpers else None
        )

    def update(self, chunk: bytes) -> None:
        first, *others = self._hashes.values()
        pending = [self._pool.submit(h.update, chunk) for h in others] if self._pool else []
        first.update(chunk)
        for future in pending:
            future.result()
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown()

    def __enter__(self) -> MultiHasher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def check_source(source: ImageRecord, digests: dict[str, str], size: int) -> None:
    """Compare what was read with what the source cloud says it stores.

    Raises:
        SourceVerificationFailed: A size or hash differs.
    """
    what = f"source image {source.id} ({source.name!r})"
    if source.size is not None and size != source.size:
        raise SourceVerificationFailed(
            f"{what}: read {size} bytes but the cloud says it holds {source.size}; the source "
            f"is damaged or changed while it was read, so no target keeps a copy"
        )
    checks = [(source.hash_algo, source.hash_value), ("md5", source.checksum)]
    for algo, stored in checks:
        if algo and stored and algo in digests and digests[algo] != stored.lower():
            raise SourceVerificationFailed(
                f"{what}: its bytes hash to {algo} {digests[algo]} but the cloud stored "
                f"{stored} when it was uploaded; the source data is corrupt, so no target "
                f"keeps a copy",
                algo=algo,
                computed=digests[algo],
                stored=stored.lower(),
            )
