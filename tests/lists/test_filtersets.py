"""One filterset per list: the page and the API take the same filters and refuse a bad value with
the same message (the API with 400, the page with 400 and the message above an empty list)."""

import html

import pytest

from tests.clients import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(group_a):
    return make_user("Filter Member", group=group_a)


@pytest.mark.parametrize(
    "query, field, message",
    [
        (
            "state=sleeping",
            "state",
            "Use one of queued, running, done, partial, failed, cancelled.",
        ),
        ("repo=two", "repo", "Give the repo's id."),
    ],
)
def test_a_bad_job_filter_gets_the_same_message_on_the_page_and_in_the_api(
    group_a, member, query, field, message
):
    client = client_for(member)
    api = client.get(f"/api/v1/jobs/?group={group_a.pk}&{query}")
    assert api.status_code == 400 and api.json() == {field: [message]}

    page = client.get(f"/jobs/?group={group_a.pk}&{query}")
    assert page.status_code == 400
    assert message in html.unescape(page.content.decode())
    assert "No jobs match." in page.content.decode()


def test_good_job_filters_are_accepted_by_both(group_a, member):
    client = client_for(member)
    query = f"group={group_a.pk}&state=done&repo=1&requester=x"
    assert client.get(f"/api/v1/jobs/?{query}").status_code == 200
    assert client.get(f"/jobs/?{query}").status_code == 200


def test_a_bad_audit_filter_gets_the_same_message_on_the_page_and_in_the_api(db):
    admin = client_for(make_user("Filter Admin", admin=True))
    api = admin.get("/api/v1/audit/?since=yesterday")
    assert api.status_code == 400
    (message,) = api.json()["since"]
    page = admin.get("/audit/?since=yesterday")
    assert page.status_code == 400 and message in html.unescape(page.content.decode())


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("sort=colour", "sort", "Use one of age, name, size, -age, -name, -size."),
    ],
)
def test_a_bad_row_filter_gets_the_same_message_on_the_matrix_page_and_in_the_api(
    group_a, member, query, field, message
):
    client = client_for(member)
    api = client.get(f"/api/v1/images/?group={group_a.pk}&{query}")
    assert api.status_code == 400 and api.json() == {field: [message]}
    page = client.get(f"/images/?group={group_a.pk}&{query}")
    assert page.status_code == 400 and message in html.unescape(page.content.decode())


def test_the_api_still_refuses_a_bad_hidden_value(group_a, member):
    api = client_for(member).get(f"/api/v1/images/?group={group_a.pk}&hidden=maybe")
    assert api.status_code == 400 and api.json() == {"hidden": ["Use true, false or all."]}
