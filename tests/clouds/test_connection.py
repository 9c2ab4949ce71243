"""Driver plumbing that needs no cloud: connections, secrets in reprs, the registry, layering.

Everything that talks to a cloud is tested against the devcloud in the other modules.
"""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pytest
import requests

import glint.clouds
from glint.clouds import (
    CloudDriver,
    FormatRefused,
    QuotaExceeded,
    RepoConnection,
    ServiceUnavailable,
    get_driver,
)
from glint.clouds.base import _DRIVERS, register_driver
from glint.clouds.openstack import error_for_response, normalise_auth_url

SECRET = "s3cr3t-do-not-show"


def password_entry(**auth):
    return {
        "auth_type": "password",
        "region_name": "RegionTwo",
        "interface": "internal",
        "auth": {
            "auth_url": "https://keystone.example:5000",
            "username": "alice",
            "password": SECRET,
            "project_name": "images",
            "user_domain_name": "Users",
            "project_domain_name": "Projects",
            **auth,
        },
    }


def test_repr_never_shows_secrets():
    password = RepoConnection.from_clouds_yaml(password_entry())
    appcred = RepoConnection(
        auth_url="http://k",
        application_credential_id="abc",
        application_credential_secret=SECRET,
        ca_bundle="PEM",
    )
    for connection in (password, appcred):
        assert SECRET not in repr(connection) and SECRET not in str(connection)
    assert "PEM" not in repr(appcred)


def test_from_clouds_yaml_password():
    c = RepoConnection.from_clouds_yaml(password_entry())
    assert (c.kind, c.auth_url, c.region, c.interface) == (
        "openstack",
        "https://keystone.example:5000",
        "RegionTwo",
        "internal",
    )
    assert (c.username, c.password, c.project_name) == ("alice", SECRET, "images")
    assert (c.user_domain_name, c.project_domain_name) == ("Users", "Projects")
    assert not c.uses_application_credential


def test_from_clouds_yaml_domain_name_fills_both():
    entry = password_entry(domain_name="Shared")
    del entry["auth"]["user_domain_name"], entry["auth"]["project_domain_name"]
    c = RepoConnection.from_clouds_yaml(entry)
    assert (c.user_domain_name, c.project_domain_name) == ("Shared", "Shared")


def test_from_clouds_yaml_application_credential(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    c = RepoConnection.from_clouds_yaml(
        {
            "auth_type": "v3applicationcredential",
            "cacert": str(ca),
            "auth": {
                "auth_url": "https://k/v3",
                "application_credential_id": "id1",
                "application_credential_secret": SECRET,
                "project_name": "ignored",
            },
        }
    )
    assert c.uses_application_credential and c.application_credential_id == "id1"
    assert c.project_name is None and c.ca_bundle == ca.read_text()


def test_incomplete_connections_are_refused():
    with pytest.raises(ValueError):
        RepoConnection(auth_url="http://k", username="u")  # no password
    with pytest.raises(ValueError):
        RepoConnection(auth_url="http://k", username="u", password="p")  # no project
    with pytest.raises(ValueError):
        RepoConnection.from_clouds_yaml({**password_entry(), "auth_type": "token"})


@pytest.mark.parametrize(
    "url",
    [
        "http://k:5000",
        "http://k:5000/",
        "http://k:5000/v3",
        "http://k:5000/v3/",
        "http://k:5000/v2.0",
    ],
)
def test_auth_url_normalised(url):
    assert normalise_auth_url(url) == "http://k:5000/v3"


def test_ca_bundle_is_a_private_temp_file_removed_on_close():
    driver = get_driver(
        RepoConnection(
            auth_url="https://k", username="u", password="p", project_id="x", ca_bundle="PEM TEXT"
        )
    )
    path = Path(driver._ca_file)
    assert path.read_text() == "PEM TEXT"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    driver.close()
    driver.close()
    assert not path.exists()


def test_registry_serves_a_new_kind_without_touching_callers():
    class Elsewhere(CloudDriver):
        kind = "elsewhere-test"
        label = "test"
        check = list_images = get_image = open_read = create_image = write_data = None
        delete = set_properties = capabilities = import_web_download = None

    Elsewhere.__abstractmethods__ = frozenset()
    register_driver(Elsewhere)
    try:
        connection = RepoConnection(
            kind="elsewhere-test", auth_url="x", username="u", password="p", project_id="p"
        )
        assert isinstance(get_driver(connection), Elsewhere)
        with pytest.raises(ValueError):
            register_driver(type("Other", (Elsewhere,), {}))
    finally:
        del _DRIVERS["elsewhere-test"]
    with pytest.raises(ValueError, match="unknown cloud kind"):
        get_driver(connection)


def _response(status: int, body: str, content_type="application/json") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.headers["Content-Type"] = content_type
    return resp


def test_http_status_mapping():
    refused = _response(
        415,
        '{"message": "Image disk_format qcow2 does not match stream data '
        'raw", "code": "415 Unsupported Media Type"}',
    )
    assert isinstance(error_for_response(refused, "upload"), FormatRefused)
    html = _response(
        413,
        "<html><body><h1>413 Request Entity Too Large</h1>Image exceeds the "
        "storage quota</body></html>",
        "text/html",
    )
    error = error_for_response(html, "upload")
    assert isinstance(error, QuotaExceeded) and "storage quota" in str(error)
    assert isinstance(error_for_response(_response(503, ""), "x"), ServiceUnavailable)


def test_clouds_package_never_imports_django():
    """Cloud drivers never import Django, or any of Glint above them but its error root."""
    root = Path(glint.clouds.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")
                assert top[0] != "django", f"{path.name} imports {name}"
                if top[0] == "glint" and name != "glint.errors":  # the error root, imports nothing
                    assert top[1] == "clouds", f"{path.name} imports {name}"
