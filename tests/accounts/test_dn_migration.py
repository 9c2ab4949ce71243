"""Migration 0003 rewrites stored DNs into the escaped canonical form, and never merges two rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from glint.accounts.dn import MAX_DN_LENGTH, canonical_from_name, canonical_from_string
from tests.identity.lookalikes import CANONICAL, SUBJECTS

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts", "0002_tokenidentity")]
AFTER = [("accounts", "0003_escaped_dns")]

LONG_TAIL = "z" * (MAX_DN_LENGTH - len("/C=CA/CN=q\\/"))

# old stored DN -> what the migration makes of it (None: kept as it was, and the user deactivated)
USERS = {
    "/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin": CANONICAL[
        "admin"
    ],  # read as old Glint read it
    "/C=CA/O=Glint Test Grid/CN=Doe, John+UID=jd": CANONICAL["multi"],
    "/C=CA/O=Glint Test Grid/CN=host/node.example.org": CANONICAL["host"],
    "/C=CA/O=Glint Test Grid/CN=host/CN=node.example.org": CANONICAL["host-lookalike"],
    # not in sorted order: one UID value, never a second row's key
    "/C=CA/UID=jd+CN=x": "/C=CA/UID=jd\\+CN=x",
    "/C=CA/CN=x+UID=jd": "/C=CA/CN=x+UID=jd",
    "/C=CA/CN=a\\b": "/C=CA/CN=a\\\\b",
    "/C=CA/CN=C++": "/C=CA/CN=C\\+\\+",
    "/C=CA/CN=x+y": "/C=CA/CN=x\\+y",  # takes the string the next row holds before it moves
    "/C=CA/CN=x\\+y": "/C=CA/CN=x\\\\\\+y",
    "/C=CA/CN=#tag": "/C=CA/CN=\\#tag",
    "/C=CA/CN=Bob ": "/C=CA/CN=Bob\\x20",
    "/C=CA/CN=Jane Doe": "/C=CA/CN=Jane Doe",
    "/C=CA/CN="
    + "x" * 25_000: None,  # stored through the membership API before the limit (SQLite only)
    "not a dn": None,
    "/C=CA/CN=q\\/" + LONG_TAIL: None,  # escaping makes it 1,026 characters
    "/C=CA/CN=q/" + LONG_TAIL: None,  # its new form is the string the row above keeps
}


@pytest.fixture
def migrate():
    executor = MigrationExecutor(connection)

    def to(target):
        executor.loader.build_graph()
        executor.migrate(target)
        return executor.loader.project_state(target).apps

    yield to
    executor.loader.build_graph()
    to(executor.loader.graph.leaf_nodes())


def test_stored_dns_are_rewritten_and_ambiguous_ones_read_as_old_glint_read_them(migrate):
    apps = migrate(BEFORE)
    User, Group, Membership = (
        apps.get_model("accounts", name) for name in ("User", "Group", "Membership")
    )
    AccessRequest = apps.get_model("accounts", "AccessRequest")
    group = Group.objects.create(name="alpha")
    pks = {}
    # PostgreSQL never held a DN over its varchar(1024); SQLite took anything.
    users = {
        old: new
        for old, new in USERS.items()
        if len(old) <= MAX_DN_LENGTH or connection.vendor == "sqlite"
    }
    for old in users:
        user = User.objects.create(dn=old, password="!", is_admin="Admins" in old)
        Membership.objects.create(user=user, group=group, role="member")
        pks[old] = user.pk
    AccessRequest.objects.create(
        dn="/C=CA/O=Glint Test Grid/CN=host/node.example.org",
        issuer_dn="/C=CA/O=Glint Test Grid/CN=CA/one",
    )
    AccessRequest.objects.create(
        dn="/C=CA/CN=a" + "+" * 600, issuer_dn=""
    )  # 1,210 characters escaped

    apps = migrate(AFTER)
    User, AccessRequest = (
        apps.get_model("accounts", "User"),
        apps.get_model("accounts", "AccessRequest"),
    )
    for old, new in users.items():
        user = User.objects.get(pk=pks[old])
        if new is None:
            assert (user.dn, user.is_active) == (old, False), old[:60]
        else:
            assert (user.dn, user.is_active) == (new, True), old[:60]
            assert canonical_from_string(new) == new
        assert user.memberships.count() == 1
    assert User.objects.get(pk=pks["/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin"]).is_admin
    assert list(AccessRequest.objects.values_list("dn", "issuer_dn")) == [
        (CANONICAL["host"], "/C=CA/O=Glint Test Grid/CN=CA\\/one")
    ]

    # After the migration the certificates themselves find their rows, and the look-alikes do not.
    stored = set(User.objects.values_list("dn", flat=True))
    for key in ("admin", "multi", "host", "host-lookalike"):
        assert canonical_from_name(SUBJECTS[key]) in stored
    for key in ("admin-lookalike", "multi-lookalike"):
        assert canonical_from_name(SUBJECTS[key]) not in stored

    apps = migrate(BEFORE)
    User = apps.get_model("accounts", "User")
    for old in users:
        assert User.objects.get(pk=pks[old]).dn == old, old[:60]
