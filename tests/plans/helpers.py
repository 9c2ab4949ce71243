"""Helpers of the plans tests (and of others that need a repo or an image without a cloud):
repos and images written straight into the inventory, and the matrix rows they make."""

from __future__ import annotations

import hashlib
import itertools

from django.db.models import F
from django.utils import timezone

from glint.inventory.models import Image, RepoInventory
from glint.jobs.matrix import forget_cached_matrices, group_matrix
from glint.repos.models import Repo

_ids = itertools.count(1)


def add_repo(group, name: str, project: str, site: str = "") -> Repo:
    """An enabled repo (at ``site``) whose last poll succeeded, with project ``project`` and an
    empty inventory."""
    repo = Repo.objects.create(
        group=group,
        name=name,
        site=site,
        auth_url="https://keystone.example.invalid/v3",
        username="glint",
        project_name=name,
        last_poll_at=timezone.now(),
        last_poll_ok=True,
    )
    RepoInventory.objects.update_or_create(
        repo=repo, defaults={"project_id": project, "version": 1}
    )
    return repo


def add_image(repo: Repo, name: str, content: bytes = b"centos", **fields) -> Image:
    """An image as a poll would have written it (md5 of ``content``), owned by the repo's
    project."""
    now = timezone.now()
    values = {
        "status": "active",
        "size": len(content),
        "disk_format": "raw",
        "container_format": "bare",
        "checksum": hashlib.md5(content).hexdigest(),
        "owner": repo.inventory.project_id,
        "visibility": "private",
        "fingerprint": "test",
        "first_seen": now,
        "last_seen": now,
    }
    values.update(fields)
    image = Image.objects.create(repo=repo, image_id=f"image-{next(_ids)}", name=name, **values)
    bump(repo)
    return image


def bump(repo: Repo) -> None:
    """What a poll that saw a change does: the repo's inventory version goes up."""
    RepoInventory.objects.filter(repo=repo).update(version=F("version") + 1)
    forget_cached_matrices()


def row_of(group, name: str):
    return next(row for row in group_matrix(group).rows if row.name == name)


def version(group) -> str:
    return group_matrix(group).version
