"""What every figure stands on: the devcloud, a real ``glint serve``, drivers, and test images.

The devcloud is the bench's own (``devcloud.up``), never the test suite's fixture. ``glint serve``
is started with the same helpers as the live-server tests (tests/live.py): its own data
directory, TLS with client certificates, and the network guard.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

import devcloud
from glint.clouds import CHUNK_SIZE, CloudDriver, RepoConnection, get_driver
from tests.live import LIVE_ADMIN_CN, make_pki, run_glint, start_server

__all__ = ["Glint", "Stack", "boot_devcloud", "clone_rows", "file_chunks", "write_random_file"]

GROUP = "bench"
RAW = {"disk_format": "raw", "container_format": "bare"}


def boot_devcloud(directory: Path, clouds: int, projects_per_cloud: int) -> devcloud.Devcloud:
    """A devcloud of ``clouds`` Glances on 2 Keystones (plain HTTP: TLS costs the same
    everywhere)."""
    return devcloud.up(
        directory, clouds=clouds, keystones=min(2, clouds), projects_per_cloud=projects_per_cloud
    )


def write_random_file(path: Path, size: int) -> Path:
    """``size`` random bytes (Glance takes them as ``raw``), written once and reused by every
    route."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = 16 * CHUNK_SIZE
    with path.open("wb") as out:
        left = size
        while left:
            out.write(os.urandom(min(block, left)))
            left -= min(block, left)
    return path


def clone_rows(database: Path, table: str, column: str, value: str, variants: list[dict]) -> None:
    """In a devcloud service's SQLite ``database``, insert a copy of the ``table`` row whose
    ``column`` is ``value`` for each dict of ``variants``, with the columns it names changed."""
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as db, db:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        template = dict(
            zip(
                columns,
                db.execute(f"SELECT * FROM {table} WHERE {column} = ?", (value,)).fetchone(),
            )
        )
        db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[{**template, **variant}[c] for c in columns] for variant in variants],
        )


def glance_time(moment: dt.datetime) -> str:
    """A time as Glance's database stores it (UTC, no zone)."""
    return (
        moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    )


def _zero_digests(size: int, algorithm: str) -> tuple[str, str]:
    """md5 and ``algorithm`` of ``size`` zero bytes, the two hashed at once (hashlib lets go of
    the GIL on large buffers)."""
    block = bytes(16 * CHUNK_SIZE)

    def digest(name: str) -> str:
        hasher = hashlib.new(name)
        left = size
        while left:
            hasher.update(block[: min(left, len(block))])
            left -= min(left, len(block))
        return hasher.hexdigest()

    with ThreadPoolExecutor(max_workers=2) as pool:
        md5, other = pool.map(digest, ("md5", algorithm))
    return md5, other


def file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    with path.open("rb") as data:
        while chunk := data.read(chunk_size):
            yield chunk


class Stack:
    """The devcloud and a driver per cloud name (``devcloud-1``, ``devcloud-1-p2`` …)."""

    def __init__(self, dc: devcloud.Devcloud):
        self.dc = dc

    def driver(self, cloud: str) -> CloudDriver:
        return get_driver(RepoConnection.from_clouds_yaml(self.dc.cloud_config(cloud)))

    def upload(self, cloud: str, path: Path, name: str | None = None) -> str:
        """Put the file into ``cloud`` as a new raw image; returns its id (once active)."""
        with self.driver(cloud) as driver:
            record = driver.create_and_write(
                {"name": name or f"bench-{uuid.uuid4().hex[:8]}", **RAW},
                file_chunks(path),
                size=path.stat().st_size,
            )
        return record.id

    def plant_zeros(self, cloud: str, size: int, name: str) -> str:
        """An active raw image of ``size`` zero bytes in ``cloud``, made without sending a byte.

        Uploading 4 GiB costs Glance over a minute of CPU (it parses the body in Python and
        hashes it twice) before the figure that needs the image even starts. Here a sparse file
        goes into the Glance's store, and the records of a small image uploaded through the API
        are copied for it with the size and checksums of the zeros: Glance then serves it like
        any image it stored itself. Returns its id.
        """
        with self.driver(cloud) as driver:
            template = driver.create_and_write(
                {"name": f"{name}-template", **RAW}, [bytes(1024)], size=1024
            ).id
        image_id = str(uuid.uuid4())
        store = self.dc.store_dir(cloud)
        with (store / image_id).open("wb") as sparse:
            sparse.truncate(size)
        md5, digest = _zero_digests(size, self.dc.hash_algo(cloud))
        database = self.dc.glance_database(cloud)
        now = glance_time(dt.datetime.now(dt.UTC))
        clone_rows(
            database,
            "images",
            "id",
            template,
            [
                {
                    "id": image_id,
                    "name": name,
                    "size": size,
                    "virtual_size": size,
                    "checksum": md5,
                    "os_hash_value": digest,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        clone_rows(
            database,
            "image_locations",
            "image_id",
            template,
            [
                {
                    "id": None,
                    "image_id": image_id,
                    "value": f"file://{store / image_id}",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        self.delete_quietly(cloud, [template])
        return image_id

    def delete_quietly(self, cloud: str, image_ids) -> None:
        with self.driver(cloud) as driver:
            for image_id in image_ids:
                with contextlib.suppress(Exception):
                    driver.delete(image_id)

    def delete_named(self, cloud: str, name: str) -> None:
        with self.driver(cloud) as driver:
            for record in driver.list_images():
                if record.name == name:
                    with contextlib.suppress(Exception):
                        driver.delete(record.id)


class Glint:
    """A running ``glint serve`` whose group ``bench`` holds some devcloud clouds as repos.

    ``api_*`` calls go through the REST API with the admin's certificate, like any script would.
    """

    def __init__(
        self,
        dc: devcloud.Devcloud,
        directory: Path,
        clouds: list[str],
        ec2_peer=None,
        **settings: str,
    ):
        self.directory = directory
        self.pki = make_pki(_fresh(directory / "pki"))
        data_dir = directory / "data"
        self.cache_dir = directory / "cache"
        for args in (
            ("migrate",),
            ("group", "add", GROUP),
            (
                "user",
                "add",
                "--dn",
                f"/C=CA/O=Glint Test Grid/CN={LIVE_ADMIN_CN}",
                "--admin",
                "--group",
                GROUP,
                "--role",
                "manager",
            ),
            (
                "repo",
                "import",
                str(dc.clouds_yaml),
                "--group",
                GROUP,
                *[a for c in clouds for a in ("--cloud", c)],
            ),
        ):
            result = run_glint(data_dir, *args)
            if result.returncode:
                raise RuntimeError(f"glint {' '.join(args[:2])} failed: {result.stderr}")
        if ec2_peer is not None:
            args, secret = ec2_peer.glint_repo_import(GROUP, "ec2")
            result = run_glint(data_dir, *args, **secret)
            if result.returncode:
                raise RuntimeError(f"glint {' '.join(args[:2])} failed: {result.stderr}")
        _cert, _key, self.cert_file = self.pki.person(LIVE_ADMIN_CN)
        self.server = start_server(
            data_dir,
            "--cert",
            str(self.pki.server_file),
            "--key",
            str(self.pki.server_file),
            "--client-ca",
            str(self.pki.ca_file),
            GLINT_CACHE_DIR=str(self.cache_dir),
            **settings,
        )
        self.url = f"https://127.0.0.1:{self.server.port}/api/v1/"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.cert = str(self.cert_file)
        self.session.verify = str(self.pki.ca_file)
        self.group = next(g["id"] for g in self.get("groups/")["results"] if g["name"] == GROUP)
        self.repos = {r["name"]: r["id"] for r in self.get("repos/", group=self.group)["results"]}

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def call(
        self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs
    ) -> requests.Response:
        kwargs.setdefault("timeout", 600)
        response = self.session.request(method, self.url + path, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}"
            )
        return response

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params=params).json()

    def post(
        self, path: str, body: dict | None = None, expect: tuple[int, ...] = (200, 201, 202)
    ) -> dict:
        return self.call("POST", path, json=body or {}, expect=expect).json()

    def refresh(self) -> None:
        self.post(f"groups/{self.group}/refresh/")

    def row(self, name: str, holders: set[str], timeout: float = 120) -> tuple[dict, str]:
        """The matrix row ``name`` once exactly ``holders`` hold it (refreshing the inventory
        first)."""
        self.refresh()
        wanted = {self.repos[h] for h in holders}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listing = self.get("images/", group=self.group, q=name, hidden="all")
            for row in listing["results"]:
                held = {cell["repo"] for cell in row["cells"] if cell["copies"]}
                if row["name"] == name and held == wanted:
                    return row, listing["inventory_version"]
            time.sleep(0.3)
        raise RuntimeError(f"the inventory never showed {name} in exactly {sorted(holders)}")

    def start_copy(self, row: dict, version: str, targets: list[str]) -> int:
        """Plan and apply a copy of ``row`` to ``targets`` (the matrix's own path); the job id."""
        plan = self.post(
            "plans/",
            {
                "group": self.group,
                "inventory_version": version,
                "changes": [
                    {"row": row["id"], "repo": self.repos[t], "action": "copy"} for t in targets
                ],
            },
        )
        refused = [i for i in plan["items"] if i["status"] != "planned"]
        if refused:
            raise RuntimeError(f"the plan refused the copy: {refused}")
        (job_id,) = self.post(f"plans/{plan['id']}/apply/")["jobs"]
        return job_id

    def timed_copy(self, row: dict, version: str, targets: list[str]) -> float:
        """Seconds from planning a copy of ``row`` to ``targets`` until its job ended ``done``.

        The end is the job's own ``finished`` (``glint serve`` runs on this machine's clock), not
        the poll that saw it: a watcher's poll interval is not part of what the copy costs, and
        polling fast enough to time the copy to a few milliseconds would make ``glint serve``
        spend CPU on answering it that the copy then lacks (at 4 polls a second, ~0.3 CPU-s
        of a 1 GiB copy's ~2.4).
        """
        started = time.time()
        job = self.wait_job(self.start_copy(row, version, targets))
        return dt.datetime.fromisoformat(job["finished"]).timestamp() - started

    def wait_job(self, job_id: int, timeout: float = 1800, poll: float = 1.0) -> dict:
        """The job once it has ended (and will not retry); raises unless it ended ``done``.
        Polled every second by default, as the job page polls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"jobs/{job_id}/")
            if job["state"] not in ("queued", "running") and not job["next_attempt_at"]:
                if job["state"] != "done":
                    errors = "; ".join(
                        f"{t['repo_name']}: {t['error']}" for t in job["targets"] if t["error"]
                    )
                    raise RuntimeError(f"job {job_id} ended {job['state']}: {errors}")
                return job
            time.sleep(poll)
        raise RuntimeError(f"job {job_id} did not end within {timeout:g}s")

    def clear_cache(self) -> None:
        """Empty the content cache, so the next copy reads its source cloud again (not the spool
        the previous run left: that would be a retry's shortcut, not a copy)."""
        for path in (self.cache_dir / "objects").glob("*"):
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        self.server.stop()


def _fresh(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory
