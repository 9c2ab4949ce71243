"""A canary password (a unique random string) set on a repo must appear nowhere it could leak.

Surfaces checked: every API response about repos (list, detail, create/update refusals, validate,
import), every repo page, the log records at DEBUG (Glint's and the cloud libraries'), and the
database: every row of every table read back with raw SQL, plus, on SQLite, the bytes of a copy of
the database file. To extend it (job rows, new pages, new endpoints), add the requests to
``exercise_every_surface``; new tables are covered by the dump without any change.
"""

import html
import logging
import secrets

import pytest
import yaml
from django.db import connection

from glint.repos.models import Repo
from tests.repos.helpers import form_data, make_repo, post_json

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]


def database_dump(tmp_path) -> bytes:
    """Every row of every table as text, and on SQLite the database file itself."""
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            lines.extend(f"{table} {row!r}" for row in cursor.fetchall())
        dump = "\n".join(lines).encode()
        if connection.vendor == "sqlite":
            copy = tmp_path / "copy.sqlite3"
            cursor.execute("VACUUM INTO %s", [str(copy)])
            dump += copy.read_bytes()
    return dump


def exercise_every_surface(client, repo: Repo, devcloud, canary: str) -> dict[str, str]:
    """Request everything that shows or handles the repo; returns {surface: response text}."""
    entry = devcloud.cloud_config("devcloud-1")
    group = repo.group_id
    wrong = dict(form_data(entry, name="with-canary", password=canary), group=group)
    yaml_text = yaml.safe_dump(
        {"clouds": {"canary-cloud": dict(entry, auth=dict(entry["auth"], password=canary))}}
    )
    responses = {
        "api list": client.get(f"/api/v1/repos/?group={group}"),
        "api detail": client.get(f"/api/v1/repos/{repo.pk}/"),
        "api create refused": post_json(client, "/api/v1/repos/", wrong),
        "api update refused": post_json(
            client, f"/api/v1/repos/{repo.pk}/", {"password": canary}, method="patch"
        ),
        "api validate": client.post(f"/api/v1/repos/{repo.pk}/validate/"),
        "api import": post_json(
            client, "/api/v1/repos/import/", {"group": group, "clouds_yaml": yaml_text}
        ),
        "page list": client.get(f"/repos/?group={group}"),
        "page edit": client.get(f"/repos/{repo.pk}/edit/"),
        "page edit refused": client.post(
            f"/repos/{repo.pk}/edit/", form_data(entry, name=repo.name, password=canary)
        ),
        "page add refused": client.post(
            f"/repos/add/?group={group}", form_data(entry, name="another", password=canary)
        ),
        "page validate": client.post(f"/repos/{repo.pk}/validate/", follow=True),
        "page delete confirmation": client.get(f"/repos/{repo.pk}/delete/"),
        "page import": client.post(f"/repos/import/?group={group}", {"file": _upload(yaml_text)}),
    }
    return {name: html.unescape(response.content.decode()) for name, response in responses.items()}


def _upload(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("clouds.yaml", text.encode())


def test_canary_password_appears_nowhere(devcloud, group_a, as_manager, caplog, tmp_path):
    canary = "canary-" + secrets.token_hex(16)
    caplog.set_level(logging.DEBUG)
    auth = devcloud.cloud_config("devcloud-1")["auth"]
    repo = make_repo(
        group_a,
        name="canary",
        auth_url=auth["auth_url"],
        username=auth["username"],
        password=canary,
        project_name=auth["project_name"],
        project_domain_name="Default",
        user_domain_name="Default",
    )

    surfaces = exercise_every_surface(as_manager, repo, devcloud, canary)

    # The requests really exercised the secret: the cloud refused it, and the pages said so.
    assert "rejected" in surfaces["api validate"] and "rejected" in surfaces["page validate"]
    for name, text in surfaces.items():
        assert canary not in text, f"the canary leaked into the {name}"
    logged = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    assert canary not in logged, "the canary leaked into the logs"
    assert canary.encode() not in database_dump(tmp_path), "the canary is stored in plain text"
    assert (
        Repo.objects.get(pk=repo.pk).connection().password == canary
    )  # it is still there, encrypted
