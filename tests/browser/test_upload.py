"""The upload page in a real browser: choose a file and two repos, watch the browser's own upload
progress, then each repo's, until both hold a verified copy."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from playwright.sync_api import expect

from tests.jobs.images import delete_named, images_named

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]


@pytest.fixture
def image_file(devcloud, tmp_path):
    name = f"browser-upload-{uuid.uuid4().hex[:8]}.img"
    path = tmp_path / name
    path.write_bytes(os.urandom(6 * 2**20))
    yield path
    delete_named(devcloud, name)


def test_upload_a_file_to_two_repos_and_watch_it_finish(devcloud, page, live_glint, image_file):
    problems = []

    def console(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} ({message.location})")

    page.on("console", console)
    page.goto(f"{live_glint.url}/uploads/new/")
    page.set_input_files("#upload-file", str(image_file))
    page.get_by_label("devcloud-1").check()
    page.get_by_label("devcloud-2").check()
    page.get_by_role("button", name="Upload").click()

    done = page.locator("#upload-done")
    expect(done).to_be_visible(timeout=90_000)
    expect(done).to_have_attribute("data-state", "done")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    for repo in ("devcloud-1", "devcloud-2"):
        expect(page.locator(f"#upload-targets li[data-repo='{repo}']")).to_contain_text("copied")
    assert not problems, problems  # no script error, no CSP violation

    sha256 = hashlib.sha256(image_file.read_bytes()).hexdigest()
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_file.name)[cloud]
        assert image.status == "active" and image.properties["glint_sha256"] == sha256
    page.locator("#upload-job-link").click()
    expect(page.locator("#job-state")).to_have_text("done")


def test_a_refused_upload_says_so_and_leaves_nothing_to_cancel(
    devcloud, page, live_glint, image_file
):
    page.goto(f"{live_glint.url}/uploads/new/")
    page.set_input_files("#upload-file", str(image_file))
    page.select_option("select[name=disk_format]", "qcow2")  # the file is random bytes: raw
    page.get_by_label("devcloud-1").check()
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-error")).to_contain_text("declared qcow2 but it is raw data")
    expect(page.locator("#upload-phase")).to_have_text("Refused")
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    expect(page.get_by_role("button", name="Upload")).to_be_enabled()
    assert not any(images_named(devcloud, image_file.name).values())
