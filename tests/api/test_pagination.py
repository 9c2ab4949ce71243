"""Every API list is paged the same way and capped: no ``limit`` or ``offset`` answers 500, and no
page holds more than 1,000 items."""

from __future__ import annotations

import pytest

from glint import audit
from tests.clients import client_for, make_user
from tests.plans.helpers import add_repo

pytestmark = pytest.mark.django_db

LISTS = [
    "jobs/",
    "uploads/",
    "audit/",
    "images/",
    "repos/",
    "groups/",
    "users/",
    "memberships/",
    "access-requests/",
    "plans/",
    "conflicts/",
]
HUGE = "9223372036854775808"  # one past the largest PostgreSQL bigint


@pytest.fixture
def admin(group_a):
    add_repo(group_a, "one", "project-one")
    return client_for(make_user("Paging Admin", admin=True, group=group_a, role="manager"))


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "query",
    [
        f"limit={HUGE}",
        f"offset={HUGE}",
        f"limit={HUGE}&offset={HUGE}",
        "limit=-1",
        "limit=abc",
        "offset=-5",
        "offset=x",
        "limit=0",
        "limit=1e3",
    ],
)
def test_no_limit_or_offset_is_a_5xx(admin, group_a, path, query):
    response = admin.get(f"/api/v1/{path}?group={group_a.pk}&{query}")
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])


def test_a_page_holds_at_most_1000_items(admin, group_a):
    for number in range(1005):
        audit.record("test.paging", details={"n": number})
    for limit in ("5000", HUGE):
        page = admin.get(f"/api/v1/audit/?limit={limit}").json()
        assert len(page["results"]) == 1000 and page["count"] > 1000
        assert "limit=1000" in page["next"]
    assert len(admin.get("/api/v1/audit/").json()["results"]) == 100, "the default page"
