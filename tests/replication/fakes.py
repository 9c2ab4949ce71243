"""An in-memory cloud for the engine faults a real cloud cannot show on demand (a stream cut at
byte N, a target that stalls, a cancel at a chosen moment). Tests only; never the product."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from glint.clouds import (
    Capabilities,
    CloudDriver,
    Conflict,
    ImageReader,
    ImageRecord,
    NotFound,
    ProjectInfo,
    RepoConnection,
    ServiceUnavailable,
    TransferInterrupted,
)

_CONNECTION = RepoConnection(
    auth_url="http://127.0.0.1:9", username="u", password="p", project_name="p"
)


class FakeCloud:
    """Images of one fake project, shared by the drivers opened on it."""

    def __init__(self, hash_algo: str = "sha512"):
        self.hash_algo = hash_algo
        self.images: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.break_read_at: int | None = None  # the next read breaks after this many bytes
        self.read_rate: float | None = None  # bytes per second read, None: no limit
        self.write_rate: float | None = None  # bytes per second written, None: no limit
        self.write_delay = 0.0  # seconds an upload waits before taking its first chunk
        self.write_started = threading.Event()
        self.failing_updates = 0  # the next property updates that answer a 5xx
        self.copies_from: FakeCloud | None = None  # copies this cloud's images itself (CopyImage)
        self.damages_copies = False  # such a copy gets one byte wrong

    def driver(self) -> FakeDriver:
        return FakeDriver(self)

    def add(self, data: bytes, **fields: Any) -> str:
        image_id = str(uuid.uuid4())
        self.images[image_id] = {
            "name": "img",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "private",
            "status": "queued",
            "owner": "proj",
            **fields,
        }
        self._store(image_id, data)
        return image_id

    def _store(self, image_id: str, data: bytes) -> None:
        self.data[image_id] = data
        self.images[image_id].update(
            status="active",
            size=len(data),
            checksum=hashlib.md5(data).hexdigest(),
            os_hash_algo=self.hash_algo,
            os_hash_value=hashlib.new(self.hash_algo, data).hexdigest(),
        )

    def record(self, image_id: str) -> ImageRecord:
        doc = dict(self.images[image_id])
        core = {
            k: doc.pop(k)
            for k in (
                "name",
                "status",
                "size",
                "disk_format",
                "container_format",
                "checksum",
                "owner",
                "visibility",
                "protected",
            )
            if k in doc
        }
        return ImageRecord(
            id=image_id,
            hash_algo=doc.pop("os_hash_algo", None),
            hash_value=doc.pop("os_hash_value", None),
            tags=tuple(doc.pop("tags", ())),
            min_disk=doc.pop("min_disk", 0),
            min_ram=doc.pop("min_ram", 0),
            os_hidden=doc.pop("os_hidden", False),
            properties=doc,
            **core,
        )


class _Reader(ImageReader):
    def __init__(self, cloud: FakeCloud, image_id: str, offset: int):
        self._data = cloud.data[image_id]
        self._cloud = cloud
        self.offset = offset
        self.size = len(self._data)

    def __iter__(self) -> Iterator[bytes]:
        position = self.offset
        while position < len(self._data):
            limit = self._cloud.break_read_at
            if limit is not None and position >= limit:
                self._cloud.break_read_at = None
                raise TransferInterrupted(f"broke at byte {position}")
            chunk = self._data[position : position + 65536]
            position += len(chunk)
            if self._cloud.read_rate:
                time.sleep(len(chunk) / self._cloud.read_rate)
            yield chunk

    def close(self) -> None:
        pass


class FakeDriver(CloudDriver):
    kind = "fake"
    label = "in-memory fake"

    def __init__(self, cloud: FakeCloud):
        super().__init__(_CONNECTION)
        self.cloud = cloud

    def check(self) -> ProjectInfo:
        return ProjectInfo(project_id="proj", project_name="proj")

    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        return [self.cloud.record(i) for i in list(self.cloud.images)]

    def get_image(self, image_id: str) -> ImageRecord:
        if image_id not in self.cloud.images:
            raise NotFound(f"no image {image_id}")
        return self.cloud.record(image_id)

    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        return _Reader(self.cloud, image_id, offset)

    def create_image(self, fields: Mapping[str, Any]) -> ImageRecord:
        image_id = str(uuid.uuid4())
        self.cloud.images[image_id] = {"status": "queued", "owner": "proj", **fields}
        return self.cloud.record(image_id)

    def write_data(
        self, image_id: str, chunks: Iterable[bytes], size: int | None = None
    ) -> ImageRecord:
        if self.cloud.images[image_id]["status"] != "queued":
            raise Conflict("image already has data")
        self.cloud.write_started.set()
        time.sleep(self.cloud.write_delay)
        parts = []
        for chunk in chunks:
            parts.append(chunk)
            if self.cloud.write_rate:
                time.sleep(len(chunk) / self.cloud.write_rate)
        if image_id not in self.cloud.images:
            raise NotFound("deleted during upload")
        self.cloud._store(image_id, b"".join(parts))
        return self.cloud.record(image_id)

    def delete(self, image_id: str) -> None:
        if self.cloud.images.pop(image_id, None) is None:
            raise NotFound(f"no image {image_id}")
        self.cloud.data.pop(image_id, None)

    def set_properties(
        self,
        image_id: str,
        set: Mapping[str, Any] | None = None,  # noqa: A002
        remove: Iterable[str] = (),
    ) -> ImageRecord:
        if self.cloud.failing_updates:
            self.cloud.failing_updates -= 1
            raise ServiceUnavailable("HTTP 503 (fake)")
        doc = self.cloud.images[image_id]
        doc.update(set or {})
        for key in remove:
            doc.pop(key, None)
        return self.cloud.record(image_id)

    def capabilities(self) -> Capabilities:
        return Capabilities(hash_algo=self.cloud.hash_algo)

    def import_web_download(self, image_id: str, url: str) -> None:
        raise NotImplementedError

    def can_copy_from(self, source: Any) -> bool:
        return self.cloud.copies_from is not None

    def copy_from(
        self, source: Any, image_id: str, fields: Mapping[str, Any], size: int | None
    ) -> ImageRecord:
        data = bytearray(self.cloud.copies_from.data[image_id])
        if self.cloud.damages_copies:
            data[len(data) // 2] ^= 0xFF
        created = self.create_image(fields)
        self.cloud._store(created.id, bytes(data))
        return self.cloud.record(created.id)
