"""The OpenAPI schema: valid, warning-free, and covering every resource other tools rely on."""

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_is_valid_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in (
        "/api/v1/groups/",
        "/api/v1/repos/",
        "/api/v1/images/",
        "/api/v1/conflicts/",
        "/api/v1/whoami/",
    ):
        assert f"{path}:" in text, f"{path} is missing from the schema"
    assert "mutualTLS" in text


def test_schema_is_served_to_signed_in_people(client_for_member):
    response = client_for_member.get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"openapi: 3.1.0" in response.content
