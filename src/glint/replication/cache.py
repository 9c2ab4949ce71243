"""The content-addressed local cache: the spool of slow targets, and a copy source for retries.

docs/architecture.md "Jobs": one cache keyed by sha256 serves as the spool that lets a slow or
failed target catch up without reading the source again, the landing place of uploads, and a copy
source. Layout under ``root``::

    objects/<sha256>        the bytes of one image
    objects/<sha256>.json   its size and every digest known (to find it by the cloud's hash)
    spool/<random>.part     streams being written; renamed into objects/ once verified
    uploads/<key>.part      the bytes received so far of a resumable upload (owned by it)
    converted/<sha256>-<format>       an entry's bytes converted to another disk format
    converted/<sha256>-<format>.json  its size and sha256 (``glint.replication.conversion``)

A stream lands in ``objects/`` only after its digests were checked against the source, so an
entry is always good. Files are renamed into place atomically, and readers keep an open file
even if an entry is evicted under them (POSIX unlink semantics), so several processes can share
one cache directory. Space is reserved before a stream starts: expired entries go first, then
the least recently used, and the stream is refused when the quota or the disk's free-space floor
cannot be met.

A process writing a spool holds an exclusive ``flock`` on it, which the kernel drops when the
process dies (even by kill -9): a spool nobody holds is a crash's leftover, removed by
:meth:`ContentCache.remove_abandoned_spools` (the start-up and periodic repair, and every
reservation, so leftovers never count against the quota). An upload's part is not a leftover
while its upload may still be resumed: its owner (``glint.transfers``) removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from glint.clouds import CHUNK_SIZE
from glint.replication.chunk_memory import ChunkPool
from glint.replication.errors import CacheFull

__all__ = ["ContentCache", "CacheEntry", "Spool"]

DAY = 86400.0


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One image's bytes in the cache.

    Fields:
        sha256: The key.
        size: Bytes.
        path: The data file (open it for reading; never write to it).
        hashes: Every digest known, by algorithm (always includes ``sha256``).
        last_used: Unix time it was stored or last found.
    """

    sha256: str
    size: int
    path: Path
    hashes: dict[str, str]
    last_used: float


class ContentCache:
    """A directory of images keyed by sha256, with a quota, an expiry and a free-space floor.

    Args:
        root: The cache directory (created if missing).
        quota_bytes: Most bytes the entries and spools may take together; None for no quota.
        max_age: Seconds an entry is kept after its last use.
        min_free_bytes: Free space the disk must keep after a reservation.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        quota_bytes: int | None = None,
        max_age: float = 7 * DAY,
        min_free_bytes: int = 1024**3,
    ):
        self.root = Path(root)
        self.quota_bytes = quota_bytes
        self.max_age = max_age
        self.min_free_bytes = min_free_bytes
        self._objects = self.root / "objects"
        self._spools = self.root / "spool"
        self._uploads = self.root / "uploads"
        self._converted = self.root / "converted"
        for directory in (self._objects, self._spools, self._uploads, self._converted):
            directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # Lookup

    def entries(self) -> list[CacheEntry]:
        """All complete entries, least recently used first."""
        found = []
        metas = [*self._objects.glob("*.json"), *self._converted.glob("*.json")]
        for meta in metas:
            entry = self._load(meta)
            if entry is not None:
                found.append(entry)
        return sorted(found, key=lambda e: e.last_used)

    def get(self, sha256: str) -> CacheEntry | None:
        """The entry for a sha256, marking it used; None if absent."""
        return self._touch(self._load(self._objects / f"{sha256}.json"))

    def converted(self, source_sha256: str, disk_format: str) -> CacheEntry | None:
        """The conversion of entry ``source_sha256`` to ``disk_format``, marking it used."""
        return self._touch(self._load(self._converted_path(source_sha256, disk_format + ".json")))

    def _converted_path(self, source_sha256: str, suffix: str) -> Path:
        if not all(c in "0123456789abcdef" for c in source_sha256) or "/" in suffix:
            raise ValueError(f"not a cache key: {source_sha256!r}")
        return self._converted / f"{source_sha256}-{suffix}"

    def find(self, algo: str, hexdigest: str) -> CacheEntry | None:
        """The entry whose ``algo`` digest is ``hexdigest`` (e.g. a cloud's sha512), if any."""
        if algo == "sha256":
            return self.get(hexdigest.lower())
        for entry in self.entries():
            if entry.hashes.get(algo) == hexdigest.lower():
                return self._touch(entry)
        return None

    def _load(self, meta: Path) -> CacheEntry | None:
        try:
            data = json.loads(meta.read_text())
            path = meta.with_suffix("")
            last_used = meta.stat().st_mtime
        except (OSError, ValueError):
            return None
        if not path.exists():
            return None
        return CacheEntry(
            sha256=data["hashes"]["sha256"],
            size=data["size"],
            path=path,
            hashes=data["hashes"],
            last_used=last_used,
        )

    def _touch(self, entry: CacheEntry | None) -> CacheEntry | None:
        if entry is not None:
            try:
                os.utime(entry.path.with_suffix(".json"))
            except OSError:
                return None  # evicted meanwhile
        return entry

    # Space

    def usage(self) -> int:
        """Bytes taken by entries, spools and upload parts."""
        total = 0
        for directory in (self._objects, self._spools, self._uploads, self._converted):
            for path in directory.iterdir():
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                    total += path.stat().st_size
        return total

    def remove_abandoned_spools(self) -> list[Path]:
        """Remove the spools no process is writing (a crash left them); returns their paths."""
        removed = []
        for path in self._spools.glob("*.part"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
            finally:
                os.close(fd)
        return removed

    def evict_expired(self) -> int:
        """Remove entries unused for longer than ``max_age``; returns how many."""
        cutoff = time.time() - self.max_age
        old = [e for e in self.entries() if e.last_used < cutoff]
        for entry in old:
            self._remove(entry)
        return len(old)

    def reserve(self, size: int) -> None:
        """Make room for ``size`` more bytes, evicting as needed.

        Raises:
            CacheFull: The quota or the free-space floor cannot be met even with the cache empty
                of finished entries; not retryable when ``size`` is more than the whole quota.
        """
        if self.quota_bytes is not None and size > self.quota_bytes:
            never = CacheFull(
                f"{self._full_message(size)}; that is more than the whole quota "
                f"(cache_quota_bytes), so it will not fit later either"
            )
            never.retryable = False
            raise never
        with self._lock:
            self.remove_abandoned_spools()
            self.evict_expired()
            lru = self.entries()
            while not self._fits(size):
                if not lru:
                    raise CacheFull(self._full_message(size))
                self._remove(lru.pop(0))

    def _fits(self, size: int) -> bool:
        if self.quota_bytes is not None and self.usage() + size > self.quota_bytes:
            return False
        return shutil.disk_usage(self.root).free - size >= self.min_free_bytes

    def _full_message(self, size: int) -> str:
        free = shutil.disk_usage(self.root).free
        return (
            f"the cache at {self.root} cannot take {size} bytes: quota "
            f"{self.quota_bytes if self.quota_bytes is not None else 'none'}, "
            f"{self.usage()} bytes in use, {free} bytes free on disk, "
            f"{self.min_free_bytes} must stay free"
        )

    def _remove(self, entry: CacheEntry) -> None:
        for path in (entry.path.with_suffix(".json"), entry.path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    # Writing

    def spool(self, size: int | None) -> Spool:
        """Start a stream into the cache, reserving ``size`` bytes first (if known).

        Raises:
            CacheFull: No room.
        """
        if size:
            self.reserve(size)
        return Spool(self, self._spools / f"{uuid.uuid4().hex}.part")

    # Upload parts

    def upload_part(self, key: str, offset: int) -> Spool:
        """The part file of resumable upload ``key``, cut to its first ``offset`` bytes (those
        the upload recorded as safe on disk), open to append the rest (created if missing).

        Raises:
            ValueError: The file holds fewer than ``offset`` bytes (ask :meth:`upload_part_size`).
        """
        return Spool(self, self.upload_part_path(key), resume_at=offset)

    def upload_part_path(self, key: str) -> Path:
        return self._uploads / f"{key}.part"

    def upload_part_size(self, key: str) -> int:
        """Bytes in upload ``key``'s part file (0 when it has none)."""
        try:
            return self.upload_part_path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def upload_part_keys(self) -> list[str]:
        """The keys of the upload parts on disk."""
        return [path.stem for path in self._uploads.glob("*.part")]

    def remove_upload_part(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.upload_part_path(key).unlink()

    def commit_converted(
        self, part: Path, source_sha256: str, disk_format: str, hashes: dict[str, str]
    ) -> CacheEntry:
        """Keep a finished conversion (a spool's file written by another program) as the entry
        of (``source_sha256``, ``disk_format``), its own digests in ``hashes``."""
        path = self._converted_path(source_sha256, disk_format)
        return self._place(part, path, part.stat().st_size, hashes)

    def _commit(self, part: Path, size: int, hashes: dict[str, str]) -> CacheEntry:
        return self._place(part, self._objects / hashes["sha256"], size, hashes)

    def _place(self, part: Path, path: Path, size: int, hashes: dict[str, str]) -> CacheEntry:
        sha256 = hashes["sha256"]
        os.replace(part, path)
        meta = path.with_suffix(".json")
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"size": size, "hashes": hashes}))
        os.replace(tmp, meta)
        return CacheEntry(sha256, size, path, dict(hashes), time.time())


#: Pages are dropped from the page cache in steps of at least this many bytes (one
#: ``posix_fadvise`` call per step, not per chunk).
RELEASE_STEP = 8 * 1024 * 1024


class Spool:
    """A stream being written into the cache, readable while it grows.

    One thread writes (:meth:`write`), any number read behind it (:meth:`read_at`, which waits
    for bytes not written yet). Reads use ``pread`` on their own descriptor, so they see every
    byte written through the unbuffered write descriptor at once, from the page cache.

    A spool may hold only parts of a stream (:meth:`write` at an offset; the file is sparse
    elsewhere): the fan-out spools only the chunks a lagging target skipped. Such a spool is
    never kept as an entry (:attr:`whole`), and a read outside the parts written is refused.

    A writable spool is new (``O_EXCL``), or, with ``resume_at``, an upload's part file that
    keeps its first ``resume_at`` bytes; either way this process holds its ``flock`` until
    :meth:`close` (see the module docstring).
    """

    def __init__(
        self,
        cache: ContentCache | None,
        path: Path,
        *,
        size: int | None = None,
        resume_at: int | None = None,
    ):
        self._cache = cache
        self.path = path
        #: False for a finished cache entry that is only read (see :meth:`of_file`).
        self.writable = size is None
        if not self.writable:
            flags = os.O_RDONLY
        elif resume_at is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
        else:
            flags = os.O_RDWR | os.O_CREAT
        self._fd = os.open(path, flags, 0o600)
        self.written = size or 0
        if self.writable:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if resume_at is not None:
                    if os.fstat(self._fd).st_size < resume_at:
                        raise ValueError(f"{path} holds fewer than {resume_at} bytes")
                    os.ftruncate(self._fd, resume_at)
                    os.lseek(self._fd, resume_at, os.SEEK_SET)
                    self.written = resume_at
            except BaseException:
                os.close(self._fd)
                raise
        self._done = not self.writable
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        #: The byte ranges written, [start, end) each, in order (see :meth:`write`).
        self._parts: list[list[int]] = [[0, self.written]] if self.written else []
        self._released = 0

    @classmethod
    def of_file(cls, path: Path, size: int) -> Spool:
        """A finished, read-only spool over a cache entry's file: lagging targets of a copy
        that reads from the cache read the file themselves."""
        return cls(None, path, size=size)

    def fileno(self) -> int:
        """The descriptor holding the spool's lock: a program that writes the file for this
        process inherits it, so the spool is not abandoned while that program runs."""
        return self._fd

    @property
    def whole(self) -> bool:
        """Whether the file holds every byte from the first to :attr:`written`."""
        return not self._parts or (len(self._parts) == 1 and self._parts[0][0] == 0)

    def write(self, chunk: bytes, offset: int | None = None) -> None:
        """Append ``chunk``, or write it at ``offset`` (at or past the end: the bytes between
        are never written)."""
        start = self.written if offset is None else offset
        assert start >= self.written
        view, at = memoryview(chunk), start
        while view:
            done = os.pwrite(self._fd, view, at)
            view, at = view[done:], at + done
        with self._cond:
            if self._parts and self._parts[-1][1] == start:
                self._parts[-1][1] = at
            else:
                self._parts.append([start, at])
            self.written = at
            self._cond.notify_all()

    def sync(self) -> None:
        """Make the bytes written so far durable (they survive a power cut, not only a crash)."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def end(self) -> None:
        """No more bytes will be written (readers get b"" at the end)."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Writing stopped for good: waiting readers raise ``error``."""
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``, waiting until they are written.

        Returns:
            b"" when ``offset`` is the end of a finished stream.

        Raises:
            The error given to :meth:`fail`.
        """
        available = self._readable(offset, length)
        return os.pread(self._fd, available, offset) if available > 0 else b""

    def read_pooled(self, offset: int, length: int, pool: ChunkPool) -> memoryview:
        """:meth:`read_at` into a buffer of ``pool`` (``length`` at most its size), as a view of
        it: a fresh chunk per read would cost a page fault per 4 KiB of it, more than the read
        itself. The pool gives the buffer out again once nobody holds the view.

        Returns:
            An empty view when ``offset`` is the end of a finished stream.
        """
        view = memoryview(pool.take())[:length]
        available = self._readable(offset, len(view))
        done = os.preadv(self._fd, [view[:available]], offset) if available > 0 else 0
        return view[:done]

    def chunks(self) -> Iterator[memoryview]:
        """The bytes from the first, in chunks read into reused buffers (:meth:`read_pooled`),
        until the end of a finished stream."""
        offset = 0
        pool = ChunkPool()
        while chunk := self.read_pooled(offset, CHUNK_SIZE, pool):
            offset += len(chunk)
            yield chunk
            del chunk  # no view of the buffer left here: the pool may give it out again

    def _readable(self, offset: int, length: int) -> int:
        """How many of ``length`` bytes at ``offset`` can be read now, once any are written."""
        with self._cond:
            while self.written <= offset and not self._done and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if self.writable and offset < self.written:
                part = next((p for p in reversed(self._parts) if p[0] <= offset), None)
                if part is None or offset >= part[1]:
                    raise ValueError(f"{self.path} holds no bytes at {offset}: never written")
                length = min(length, part[1] - offset)
            return min(length, self.written - offset)

    def release(self, upto: int) -> None:
        """Every reader is past byte ``upto``: drop the pages before it from the page cache
        (``POSIX_FADV_DONTNEED``), so a copy of any size keeps only what is still to be read
        there, and the Glances' own stores keep the memory. The bytes stay in the file."""
        with self._cond:
            upto -= upto % RELEASE_STEP
            if upto <= self._released or self._fd < 0:
                return
            start, self._released = self._released, upto
            fd = self._fd
        os.posix_fadvise(fd, start, upto - start, os.POSIX_FADV_DONTNEED)

    def commit(self, hashes: dict[str, str]) -> CacheEntry:
        """Keep the finished, verified stream as a cache entry keyed by ``hashes["sha256"]``."""
        assert self._cache is not None and self.writable
        return self._cache._commit(self.path, self.written, hashes)

    def discard(self) -> None:
        """Drop the stream's file (readers holding it open may still finish)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Close the descriptor (after every reader is done)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
