"""Fixtures for the plans tests: a group with three repos whose inventory is written directly.

The planner decides from the inventory the poller wrote; these tests write it themselves (no
cloud is contacted: the repos point at an address that is never polled here), so each rule is
set up in a line. The devcloud and the real server are exercised in tests/browser/.
"""

from __future__ import annotations

import pytest

from tests.clients import client_for, make_user
from tests.fixtures import fresh_matrix_cache  # noqa: F401  (autouse: one per test)
from tests.plans.helpers import add_image, add_repo


@pytest.fixture
def world(group_a):
    """Group alpha: repos one, two, three; "centos" in one and two; a member and a client."""
    repos = [add_repo(group_a, name, f"project-{name}") for name in ("one", "two", "three")]
    images = [add_image(repos[0], "centos"), add_image(repos[1], "centos")]
    member = make_user("Plan Member", group=group_a)
    return {
        "group": group_a,
        "repos": repos,
        "images": images,
        "member": member,
        "client": client_for(member),
    }
