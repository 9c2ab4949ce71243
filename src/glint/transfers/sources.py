"""An upload's bytes as the *source* of an ordinary engine copy.

The replication engine copies from a :class:`~glint.clouds.CloudDriver`. Rather than a second
fan-out for uploads, an upload is dressed as a one-image "cloud": :class:`UploadSource` answers
``get_image`` with the image the person declared and ``open_read`` with the incoming stream. So
``copy_image`` does for an upload exactly what it does for a copy — prepare each target (name
clash → conflict policy), create it private, write all targets at once through bounded buffers,
spool the bytes into the content cache, verify each target against the digests of what arrived,
give it its visibility — and on a retry it finds the bytes in the cache by their sha256 and reads
them from there: the second pass never asks the person for the file again.

The engine refuses a source without a stored hash (it could not verify the bytes it reads).
An upload has one only when the person declared a checksum (the CLI always sends the file's
sha256; a web link may name one); then the incoming bytes are checked against it. Without one
there is nothing to check them against, so the runner marks the source ``trusted_stream``: the
engine copies it anyway, and still verifies every target against the digests of the bytes that
arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from glint.clouds import (
    Capabilities,
    CloudDriver,
    ImageReader,
    ImageRecord,
    InvalidRequest,
    ProjectInfo,
)
from glint.replication import ChunkPool
from glint.transfers import formats
from glint.transfers.errors import NotInCache, TooLarge, UploadInterrupted
from glint.transfers.parts import UploadPart

__all__ = ["IncomingStream", "UploadSource", "read_head", "request_chunks", "upload_record"]


def request_chunks(body, length: int | None, chunk_size: int) -> Iterator[bytes | memoryview]:
    """The raw request body, ``chunk_size`` bytes at a time, never more than ``length``.

    A body that has ``readinto`` (``glint serve``'s) is read straight into a pool of reused
    chunk buffers and yielded as views of them: no chunk is allocated per read. cheroot's own
    ``read(n)`` (pure-Python ``_pyio``) allocates an n-byte buffer for each TLS record it
    receives and joins them, three times the CPU of reading into a buffer here.

    Raises:
        UploadInterrupted: The client sent fewer bytes than it announced, or the connection broke.
    """
    readinto = getattr(body, "readinto", None)
    pool = ChunkPool(chunk_size)
    received = 0
    while length is None or received < length:
        want = chunk_size if length is None else min(chunk_size, length - received)
        try:
            if readinto is None:
                chunk = body.read(want)
            else:
                buffer = pool.take()
                chunk = memoryview(buffer)[: readinto(memoryview(buffer)[:want])]
        except (OSError, ValueError) as exc:  # cheroot: ValueError for a malformed chunked body
            raise UploadInterrupted(f"the upload broke off after {received} bytes: {exc}") from None
        if not chunk:
            if length is not None:
                raise UploadInterrupted(f"the upload stopped after {received} of {length} bytes")
            return
        received += len(chunk)
        yield chunk
        del chunk  # no view of the buffer left here: the pool may give it out again


def read_head(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first :data:`formats.HEAD_BYTES` (fewer if the stream is shorter), and the stream
    again from its start (the head is not read twice)."""
    head = b""
    while len(head) < formats.HEAD_BYTES:
        chunk = next(chunks, None)
        if chunk is None:
            break
        head += chunk

    def again() -> Iterator[bytes]:
        if head:
            yield head
        yield from chunks

    return head, again()


class IncomingStream:
    """The bytes arriving for an upload, counted, limited and checked as they pass.

    Args:
        chunks: The raw bytes (a request body or a web-link response), starting at byte 0.
        disk_format: The format the image is created with (a fixed VHD's footer is checked at
            the end, :func:`formats.check_tail`).
        max_bytes: The size limit (None: none).
        on_progress: Called with the bytes received so far (in the thread that reads).
        on_close: Releases the source of ``chunks`` (a web link's connection) when the stream
            is closed without being read to its end.
        on_interrupt: Ends a read of ``chunks`` blocked in another thread (a web link's), for
            :meth:`interrupt`.
        source_url: The URL the bytes come from after redirects (a web link's), redacted.
        part: The upload's part file that ``chunks`` are written to as they pass
            (``glint.transfers.parts``).

    Attributes:
        received: Bytes passed on so far.
        finished: The stream was read to its end without an error.
        error: The error the stream raised, if any.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        disk_format: str,
        max_bytes: int | None,
        on_progress: Callable[[int], None] | None = None,
        on_close: Callable[[], None] | None = None,
        source_url: str | None = None,
        part: UploadPart | None = None,
        on_interrupt: Callable[[], None] | None = None,
    ):
        self._chunks = iter(chunks)
        self.source_url = source_url
        self.part = part
        self._on_close = on_close
        self._on_interrupt = on_interrupt
        self.disk_format = disk_format
        self.max_bytes = max_bytes
        self._on_progress = on_progress
        self.received = 0
        self.finished = False
        self.started = False
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        with self._lock:
            if self.started:
                raise UploadInterrupted("the upload stream was already read once")
            self.started = True
        tail = b""
        try:
            for chunk in self._chunks:
                self.received += len(chunk)
                if self.max_bytes is not None and self.received > self.max_bytes:
                    raise TooLarge(
                        f"the upload is larger than the limit of {self.max_bytes} bytes "
                        f"(upload_max_bytes)"
                    )
                tail = bytes(
                    (tail + chunk)[-formats.TAIL_BYTES :]
                    if len(chunk) < formats.TAIL_BYTES
                    else chunk[-formats.TAIL_BYTES :]
                )  # a copy: a chunk may be a view of a buffer that is read into again
                if self._on_progress is not None:
                    self._on_progress(self.received)
                yield chunk
            formats.check_tail(self.disk_format, tail)
        except GeneratorExit:  # the reader stopped reading (a cancel): not the stream's fault
            raise
        except BaseException as exc:
            self.error = exc
            raise
        self.finished = True

    def close(self) -> None:
        """Give up the bytes not read yet (nobody will read them)."""
        if self._on_close is not None:
            self._on_close()

    def interrupt(self) -> None:
        """End a read blocked in another thread on a web link that stalls (a cancel). A request
        body has no such hook: its read ends when the client sends or the server's timeout."""
        if self._on_interrupt is not None:
            self._on_interrupt()


class _StreamReader(ImageReader):
    def __init__(self, stream: IncomingStream, size: int | None):
        self._stream, self.size, self.offset = stream, size, 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        self._stream.interrupt()


def upload_record(upload, disk_format: str) -> ImageRecord:
    """The image an upload declares, as the engine's source record.

    Once the bytes were received their sha256 is the stored hash (the retry reads them from the
    cache by it); before, a declared checksum, or none.
    """
    if upload.sha256:
        algo, digest = "sha256", upload.sha256
    else:
        algo, digest = upload.expected_algo, upload.expected_digest
    return ImageRecord(
        id=f"upload-{upload.pk}",
        name=upload.name,
        status="active",
        size=upload.size,
        disk_format=disk_format,
        container_format=upload.container_format or "bare",
        hash_algo=algo,
        hash_value=digest,
        visibility=upload.visibility,
        min_disk=upload.min_disk,
        min_ram=upload.min_ram,
        properties={str(k): str(v) for k, v in (upload.properties or {}).items()},
    )


class UploadSource(CloudDriver):
    """A read-only "cloud" holding one image: an upload (see the module docstring).

    Args:
        record: From :func:`upload_record`.
        stream: The bytes arriving now (first pass), or None (a retry: the engine reads the
            cache entry itself; if it was evicted, reading fails with :class:`NotInCache`).
        missing_reason: What that :class:`NotInCache` says the cause may be.
    """

    kind = "glint-upload"
    label = "upload"

    def __init__(
        self,
        record: ImageRecord,
        stream: IncomingStream | None,
        *,
        missing_reason: str = "expired or evicted",
    ):
        self.connection = None
        self.record = record
        self.stream = stream
        self.missing_reason = missing_reason

    def check(self) -> ProjectInfo:
        return ProjectInfo(project_id="glint-upload", project_name=None)

    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        return [self.record]

    def get_image(self, image_id: str) -> ImageRecord:
        return self.record

    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        if self.stream is None:
            raise NotInCache(
                f"the uploaded bytes are not in Glint's cache: {self.missing_reason}; "
                "upload the image again"
            )
        if offset or self.stream.started:
            raise UploadInterrupted(
                "an upload stream cannot be read twice; the bytes were not kept"
            )
        return _StreamReader(self.stream, self.record.size)

    def _read_only(self, *_args, **_kwargs):
        raise InvalidRequest("an upload is a copy source only")

    create_image = write_data = delete = set_properties = import_web_download = _read_only

    def capabilities(self) -> Capabilities:
        return Capabilities(can_range_read=False)
