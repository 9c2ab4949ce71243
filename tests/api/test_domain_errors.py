"""Services raise ``glint.errors.NotFound``; the API answers 404 with its message, a page 404."""

import pytest

from tests.clients import client_for, make_user

pytestmark = pytest.mark.django_db


def test_a_row_that_is_not_there_is_a_404_with_the_reason(group_a):
    client = client_for(make_user("Lost Member", group=group_a))
    missing = f"{group_a.pk}-{'0' * 16}"

    api = client.get(f"/api/v1/images/{missing}/")
    assert api.status_code == 404
    assert api.json() == {
        "detail": "No such image row: it may have changed since the page was loaded."
    }
    assert client.get(f"/images/{missing}/").status_code == 404
    assert client.post(f"/images/{missing}/hide/").status_code == 404
    assert client.get(f"/api/v1/conflicts/{group_a.pk}-drift-all-{'0' * 16}/").status_code == 404
    download = client.get(f"/api/v1/images/{missing}/download/")
    assert download.status_code == 404 and "No such image row" in download.json()["detail"]
