"""``clouds.yaml`` entries in the standard openstacksdk/os-client-config format.

Two files, so a test gets the privileges it asks for and no more:
``clouds.yaml`` holds the project users (password and application-credential variants), and
``admin-clouds.yaml`` the bootstrap admins (who alone may make an image public).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DOMAIN_NAME = "Default"


def password_entry(
    auth_url: str, region: str, username: str, password: str, project: str, ca_file: str | None
) -> dict:
    return _common(
        {
            "auth_type": "password",
            "auth": {
                "auth_url": auth_url,
                "username": username,
                "password": password,
                "project_name": project,
                "project_domain_name": DOMAIN_NAME,
                "user_domain_name": DOMAIN_NAME,
            },
        },
        region,
        ca_file,
    )


def appcred_entry(
    auth_url: str, region: str, cred_id: str, secret: str, ca_file: str | None
) -> dict:
    return _common(
        {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": auth_url,
                "application_credential_id": cred_id,
                "application_credential_secret": secret,
            },
        },
        region,
        ca_file,
    )


def _common(entry: dict, region: str, ca_file: str | None) -> dict:
    entry.update({"region_name": region, "interface": "public", "identity_api_version": 3})
    if ca_file:
        entry["cacert"] = ca_file
    return entry


def write(path: Path, clouds: dict[str, dict]) -> str:
    """Write ``{"clouds": clouds}`` to ``path`` (mode 0600: it holds passwords); return the text."""
    text = yaml.safe_dump({"clouds": clouds}, sort_keys=False, default_flow_style=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return text


def read(path: Path) -> dict[str, dict]:
    return yaml.safe_load(Path(path).read_text())["clouds"]
