"""Fixtures for the repos tests: two groups with a manager, a member and an outsider each."""

from __future__ import annotations

import pytest

from tests.clients import client_for, make_user


@pytest.fixture
def manager(group_a):
    return make_user("Alpha Manager", group=group_a, role="manager")


@pytest.fixture
def member(group_a):
    return make_user("Alpha Member", group=group_a, role="member")


@pytest.fixture
def outsider(group_b):
    return make_user("Beta Manager", group=group_b, role="manager")


@pytest.fixture
def admin(db):
    return make_user("Glint Admin", admin=True)


@pytest.fixture
def as_manager(manager):
    return client_for(manager)
