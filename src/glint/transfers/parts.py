"""An upload's bytes kept on disk as they arrive, so that an upload can be resumed.

Every incoming stream (a file's request body, a web link's response) is written to the upload's
part file in the content cache (``ContentCache.upload_part``) before it is passed on to the
fan-out. The part is fsync'd at least every :data:`SYNC_SECONDS` and :data:`SYNC_BYTES`, and at
the end or break of the stream; :attr:`UploadPart.safe` is the bytes made durable so far, the
only number ever recorded as the upload's ``bytes_received``. So after a crash (or a power cut)
the part holds at least ``bytes_received`` good bytes, and a resume cuts it to exactly that.

A resumed stream starts again at byte 0: the part's bytes are read back from the local disk,
then the new request body follows. The fan-out hashes and verifies the whole stream as one, and
the targets, restarted, receive it from its start. Re-reading the part costs a local read at
disk speed; keeping the hashers' state across processes instead is not possible with hashlib
(its objects cannot be serialized), and the targets need the bytes again anyway (Glance cannot
continue a half-written image).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from glint.clouds import CHUNK_SIZE
from glint.replication import ContentCache
from glint.replication.cache import Spool

__all__ = ["SYNC_BYTES", "SYNC_SECONDS", "UploadPart", "resume_offset"]

#: Most seconds and bytes written between two fsyncs of a part (a slow link syncs by time, a
#: fast one by size; either way an fsync per second costs nothing next to the network).
SYNC_SECONDS = 1.0
SYNC_BYTES = 64 * 1024 * 1024


def resume_offset(cache: ContentCache, upload) -> int:
    """The byte a resume of ``upload`` continues from: the bytes recorded as safe, unless its
    part file lost some (it was removed, or a power cut took unsynced bytes)."""
    return min(upload.bytes_received, cache.upload_part_size(upload.part_key))


class UploadPart:
    """The part file of one upload while its bytes arrive (see the module docstring).

    Args:
        spool: From ``ContentCache.upload_part``, holding the bytes of earlier passes.

    Attributes:
        safe: Bytes of the part known to be on disk (fsync'd).
    """

    def __init__(self, spool: Spool):
        self.spool = spool
        self.resumed_at = spool.written
        self.safe = spool.written

    def chunks(self, body: Iterable[bytes]) -> Iterator[bytes]:
        """The upload from byte 0: the part's bytes, then ``body``, each chunk of which is
        written to the part before it is passed on."""
        offset = 0
        while offset < self.resumed_at:
            chunk = self.spool.read_at(offset, min(CHUNK_SIZE, self.resumed_at - offset))
            offset += len(chunk)
            yield chunk
        synced_at = time.monotonic()
        try:
            for chunk in body:
                self.spool.write(chunk)
                unsynced = self.spool.written - self.safe
                if unsynced >= SYNC_BYTES or time.monotonic() - synced_at >= SYNC_SECONDS:
                    self.sync()
                    synced_at = time.monotonic()
                yield chunk
        finally:  # the end, a break of the body, or the reader giving up: keep what arrived
            self.sync()

    def sync(self) -> None:
        if self.spool.written != self.safe:
            self.spool.sync()
            self.safe = self.spool.written

    def close(self) -> None:
        self.spool.close()
