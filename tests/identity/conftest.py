"""People in two groups, for the account, admin-page and audit tests."""

import pytest

from glint.accounts.services import add_group
from tests.clients import make_user


@pytest.fixture
def world(db):
    """An admin; a manager and a member of "alpha"; "other", who manages only "beta"."""
    alpha, beta = add_group("alpha"), add_group("beta")
    return {
        "alpha": alpha,
        "beta": beta,
        "admin": make_user("Ada Admin", admin=True),
        "manager": make_user("Manny Manager", group=alpha, role="manager"),
        "member": make_user("Mel Member", group=alpha),
        "other": make_user("Otto Other", group=beta, role="manager"),
    }
