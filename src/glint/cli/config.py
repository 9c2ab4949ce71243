"""Where the client commands keep the server URL and identity (``glint login`` writes it).

The file is ``$GLINT_CLIENT_CONFIG`` or ``$XDG_CONFIG_HOME/glint/client.json`` (mode 0600). It holds
paths, never key material.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ClientConfig:
    url: str
    cert: str | None = None  # PEM certificate (may also hold the key and chain, like a grid proxy)
    key: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None


def config_path() -> Path:
    if os.environ.get("GLINT_CLIENT_CONFIG"):
        return Path(os.environ["GLINT_CLIENT_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "glint" / "client.json"


def grid_proxy_path() -> Path | None:
    """The grid proxy the Globus/VOMS tools use: ``$X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``."""
    candidate = Path(os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}")
    return candidate if candidate.is_file() else None


def save(config: ClientConfig) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(config), handle, indent=2)
    return path


def load() -> ClientConfig | None:
    path = config_path()
    if not path.is_file():
        return None
    return ClientConfig(**json.loads(path.read_text()))
