"""Repos on the shared devcloud, made the way a person makes them (checked against the cloud)."""

from __future__ import annotations

from glint.repos.models import Repo
from glint.repos.services import repo_from_cloud_entry, save_repo


def add_devcloud_repo(devcloud, group, cloud: str, name: str | None = None) -> Repo:
    """A repo for one devcloud clouds.yaml entry, checked against the cloud like a person's."""
    repo = repo_from_cloud_entry(
        group, name or cloud, devcloud.cloud_config(cloud), read_ca=lambda path: open(path).read()
    )
    save_repo(repo)
    return repo
