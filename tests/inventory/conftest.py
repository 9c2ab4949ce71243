"""Fixtures for the inventory tests: groups and people, and repos on the real devcloud."""

from __future__ import annotations

import pytest

from tests.clients import client_for, make_user
from tests.fixtures import fresh_matrix_cache  # noqa: F401  (autouse: one per test)


@pytest.fixture
def member_a(group_a):
    return make_user("Alpha Member", group=group_a, role="member")


@pytest.fixture
def member_b(group_b):
    return make_user("Beta Member", group=group_b, role="member")


@pytest.fixture
def client_a(member_a):
    return client_for(member_a)


@pytest.fixture
def client_b(member_b):
    return client_for(member_b)
