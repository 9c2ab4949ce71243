"""clouds.yaml import (page, API, command line) against the devcloud's own clouds.yaml files."""

import html

import pytest
import yaml
from click.testing import CliRunner
from django.core.files.uploadedfile import SimpleUploadedFile

from glint.cli.main import cli
from glint.repos.models import Repo
from tests.repos.helpers import post_json

pytestmark = pytest.mark.devcloud


def by_cloud(response) -> dict[str, dict]:
    return {result["cloud"]: result for result in response.json()["results"]}


def test_api_import_adds_every_cloud_then_skips_them(devcloud, group_a, as_manager):
    upload = SimpleUploadedFile("clouds.yaml", devcloud.clouds_yaml.read_bytes())
    first = as_manager.post("/api/v1/repos/import/", {"group": group_a.pk, "file": upload})
    assert first.status_code == 200
    results = by_cloud(first)
    assert set(results) == set(devcloud.cloud_names())
    assert {r["status"] for r in results.values()} == {"added"}, results
    assert set(Repo.objects.filter(group=group_a).values_list("name", flat=True)) == set(
        devcloud.cloud_names()
    )
    appcred = Repo.objects.get(name="devcloud-1-appcred")
    assert (
        appcred.auth_type == "application_credential" and appcred.application_credential_secret_set
    )

    again = post_json(
        as_manager,
        "/api/v1/repos/import/",
        {"group": group_a.pk, "clouds_yaml": devcloud.clouds_yaml.read_text()},
    )
    assert {r["status"] for r in by_cloud(again).values()} == {"skipped"}
    assert Repo.objects.filter(group=group_a).count() == len(devcloud.cloud_names())


def test_import_reports_each_failure_and_adds_the_rest(devcloud, group_a, as_manager):
    clouds = yaml.safe_load(devcloud.clouds_yaml.read_text())["clouds"]
    broken = dict(clouds["devcloud-2"], auth=dict(clouds["devcloud-2"]["auth"], password="wrong"))
    text = yaml.safe_dump({"clouds": {"devcloud-1": clouds["devcloud-1"], "broken": broken}})
    response = post_json(
        as_manager,
        "/api/v1/repos/import/",
        {"group": group_a.pk, "clouds_yaml": text, "clouds": ["devcloud-1", "broken", "missing"]},
    )
    results = by_cloud(response)
    assert results["devcloud-1"]["status"] == "added" and results["devcloud-1"]["repo"]
    assert results["broken"]["status"] == "failed" and "rejected" in results["broken"]["reason"]
    assert results["missing"] == {
        "cloud": "missing",
        "status": "failed",
        "reason": "there is no cloud named missing in this clouds.yaml",
        "repo": None,
    }


def test_not_a_clouds_yaml_is_a_400(group_a, as_manager):
    response = post_json(
        as_manager,
        "/api/v1/repos/import/",
        {"group": group_a.pk, "clouds_yaml": "clouds: [unclosed"},
    )
    assert response.status_code == 400 and "not valid YAML" in response.json()["file"][0]
    assert post_json(as_manager, "/api/v1/repos/import/", {"group": group_a.pk}).status_code == 400


def test_page_upload_with_cacert_needs_the_ca_bundle(devcloud_tls, group_a, as_manager):
    def upload(**extra):
        data = {
            "file": SimpleUploadedFile("clouds.yaml", devcloud_tls.clouds_yaml.read_bytes()),
            "clouds": "devcloud-1",
            **extra,
        }
        return html.unescape(
            as_manager.post(f"/repos/import/?group={group_a.pk}", data).content.decode()
        )

    refused = upload()
    assert "names a file on your machine, which the server cannot read" in refused
    assert not Repo.objects.exists()
    added = upload(ca_bundle=SimpleUploadedFile("ca.pem", devcloud_tls.ca_file.read_bytes()))
    assert "added" in added
    assert Repo.objects.get(name="devcloud-1").ca_bundle == devcloud_tls.ca_file.read_text()


def test_cli_import_reads_cacert_files_and_refuses_unreadable_ones(devcloud_tls, group_a, tmp_path):
    clouds = yaml.safe_load(devcloud_tls.clouds_yaml.read_text())["clouds"]
    clouds["unreadable"] = dict(clouds["devcloud-1-p2"], cacert=str(tmp_path / "no-such-ca.pem"))
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    runner = CliRunner()

    result = runner.invoke(
        cli,
        [
            "repo",
            "import",
            str(path),
            "--group",
            "alpha",
            "--cloud",
            "devcloud-1",
            "--cloud",
            "unreadable",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "devcloud-1: added" in result.output
    assert (
        f"unreadable: failed: cannot read cacert {tmp_path / 'no-such-ca.pem'}: "
        "No such file or directory" in result.output
    )
    assert Repo.objects.get(name="devcloud-1").ca_bundle == devcloud_tls.ca_file.read_text()

    again = runner.invoke(
        cli, ["repo", "import", str(path), "--group", "alpha", "--cloud", "devcloud-1"]
    )
    assert again.exit_code == 0 and "devcloud-1: skipped" in again.output
    unknown = runner.invoke(cli, ["repo", "import", str(path), "--group", "nobody"])
    assert unknown.exit_code == 1 and "no group named 'nobody'" in unknown.output
