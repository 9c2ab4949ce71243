"""Helpers of the repo tests: a repo saved without a cloud, form fields for a devcloud entry,
and a JSON request."""

from __future__ import annotations

import json

from glint.repos.choices import AuthType
from glint.repos.models import Repo


def make_repo(group, name="offline", **fields) -> Repo:
    """A repo saved without asking a cloud (for tests about permissions and storage only)."""
    values = dict(
        auth_url="http://127.0.0.1:9/v3",
        auth_type=AuthType.PASSWORD,
        username="glint",
        password="not-the-canary",
        project_name="images",
        project_domain_name="Default",
        user_domain_name="Default",
    )
    values.update(fields)
    return Repo.objects.create(group=group, name=name, **values)


def form_data(entry: dict, *, name: str, **changes) -> dict:
    """Repo form/API fields for one devcloud clouds.yaml entry."""
    auth = entry["auth"]
    appcred = "application_credential_id" in auth
    data = {
        "name": name,
        "kind": "openstack",
        "auth_url": auth["auth_url"],
        "region": entry.get("region_name", ""),
        "interface": entry.get("interface", "public"),
        "auth_type": AuthType.APPLICATION_CREDENTIAL if appcred else AuthType.PASSWORD,
        "username": auth.get("username", ""),
        "password": auth.get("password", ""),
        "application_credential_id": auth.get("application_credential_id", ""),
        "application_credential_secret": auth.get("application_credential_secret", ""),
        "project_name": auth.get("project_name", ""),
        "project_domain_name": auth.get("project_domain_name", ""),
        "user_domain_name": auth.get("user_domain_name", ""),
        "enabled": "on",
    }
    data.update(changes)
    return data


def post_json(client, url, data, method="post"):
    return getattr(client, method)(url, data=json.dumps(data), content_type="application/json")
