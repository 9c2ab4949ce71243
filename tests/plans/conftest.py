"""Fixtures for the plans tests: a group with three repos whose inventory is written directly.

The planner decides from the inventory the poller wrote; these tests write it themselves (no
cloud is contacted: the repos point at an address that is never polled here), so each rule is
set up in a line. The devcloud and the real server are exercised in tests/browser/.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from django.db.models import F
from django.utils import timezone

from glint.inventory.models import Image, RepoInventory
from glint.inventory.services import forget_cached_matrices, group_matrix
from glint.repos.models import Repo
from tests.clients import client_for, make_user

_ids = itertools.count(1)


def add_repo(group, name: str, project: str) -> Repo:
    """An enabled repo whose last poll succeeded, with project ``project`` and an empty inventory."""
    repo = Repo.objects.create(group=group, name=name, auth_url="https://keystone.example.invalid/v3",
                               username="glint", project_name=name, last_poll_at=timezone.now(), last_poll_ok=True)
    RepoInventory.objects.update_or_create(repo=repo, defaults={"project_id": project, "version": 1})
    return repo


def add_image(repo: Repo, name: str, content: bytes = b"centos", **fields) -> Image:
    """An image as a poll would have written it (md5 of ``content``), owned by the repo's project."""
    now = timezone.now()
    values = {"status": "active", "size": len(content), "disk_format": "raw", "container_format": "bare",
              "checksum": hashlib.md5(content).hexdigest(), "owner": repo.inventory.project_id,
              "visibility": "private", "fingerprint": "test", "first_seen": now, "last_seen": now}
    values.update(fields)
    image = Image.objects.create(repo=repo, image_id=f"image-{next(_ids)}", name=name, **values)
    bump(repo)
    return image


def bump(repo: Repo) -> None:
    """What a poll that saw a change does: the repo's inventory version goes up."""
    RepoInventory.objects.filter(repo=repo).update(version=F("version") + 1)
    forget_cached_matrices()


@pytest.fixture(autouse=True)
def _fresh_matrix_cache():
    forget_cached_matrices()
    yield
    forget_cached_matrices()


@pytest.fixture
def world(group_a):
    """Group alpha: repos one, two, three; "centos" in one and two; a member and a client."""
    repos = [add_repo(group_a, name, f"project-{name}") for name in ("one", "two", "three")]
    images = [add_image(repos[0], "centos"), add_image(repos[1], "centos")]
    member = make_user("Plan Member", group=group_a)
    return {"group": group_a, "repos": repos, "images": images, "member": member, "client": client_for(member)}


def row_of(group, name: str):
    return next(row for row in group_matrix(group).rows if row.name == name)


def version(group) -> str:
    return group_matrix(group).version
