"""``DIR/state.json``: everything another process needs to stop, start or tear down a devcloud.

It is written before each service is spawned and again right after (with its pid), so even an
``up`` killed halfway leaves a file from which ``down`` finds every process it started. Writes go
through a temporary file and ``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import DevcloudError

STATE_FILE = "state.json"
FORMAT_VERSION = 1
_save_lock = threading.Lock()  # services are set up from several threads at once


@dataclass
class Service:
    """One gunicorn-served process: a Keystone or a Glance.

    Fields:
        name: ``keystone-K`` or ``devcloud-I`` (a Glance is named after its cloud/region).
        kind: ``keystone`` or ``glance``.
        index: K or I, counted from 1.
        port: its port on 127.0.0.1; kept when the service is stopped so ``start`` reuses it.
        url: base URL (``http(s)://127.0.0.1:PORT``), as registered in the catalog.
        probe_url: a URL that answers without a token once the service is up.
        home: the service's own directory (config, database, keys, stores).
        log_file: where its stdout/stderr and its own log go.
        argv, env, cwd: how to start it again (env holds only what devcloud adds).
        pid: the process (and process group) id while it runs, else None.
        keystone: for a Glance, the index of the Keystone it authenticates against.
        hash_algo, store_dir, staging_dir, tasks_dir: for a Glance, its ``hashing_algorithm``
            and file stores.
    """

    name: str
    kind: str
    index: int
    port: int
    url: str
    probe_url: str
    home: str
    log_file: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    pid: int | None = None
    keystone: int | None = None
    hash_algo: str | None = None
    store_dir: str | None = None
    staging_dir: str | None = None
    tasks_dir: str | None = None


@dataclass
class State:
    """A whole devcloud: its services, TLS files and set-up options.

    ``complete`` turns true only when ``up`` finished; ``down`` works either way.
    """

    dir: str
    venv: str
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token_expiration: int | None = None
    projects_per_cloud: int = 1
    complete: bool = False
    services: list[Service] = field(default_factory=list)
    version: int = FORMAT_VERSION

    @property
    def path(self) -> Path:
        return Path(self.dir) / STATE_FILE

    def keystones(self) -> list[Service]:
        return [s for s in self.services if s.kind == "keystone"]

    def glances(self) -> list[Service]:
        return [s for s in self.services if s.kind == "glance"]

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise DevcloudError(f"no service named {name!r} in {self.path}")

    def keystone_of(self, glance: Service) -> Service:
        return self.service(f"keystone-{glance.keystone}")

    def save(self) -> None:
        with _save_lock:
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
            os.replace(tmp, self.path)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> State:
        path = Path(directory) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DevcloudError(f"no devcloud in {directory} (missing {path})") from None
        if data.get("version") != FORMAT_VERSION:
            raise DevcloudError(
                f"{path} has format {data.get('version')}, expected {FORMAT_VERSION}"
            )
        known = {f.name for f in fields(Service)}
        data["services"] = [
            Service(**{k: v for k, v in s.items() if k in known}) for s in data["services"]
        ]
        return cls(**data)
