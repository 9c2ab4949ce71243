"""The upload page in a real browser: choose a file and two repos, watch the browser's own upload
progress, then each repo's, until both hold a verified copy."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import signed_in_context
from tests.browser.cutting_proxy import CuttingProxy
from tests.jobs.images import delete_named, images_named

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]


MiB = 2**20


def _random_file(devcloud, tmp_path, size: int):
    name = f"browser-upload-{uuid.uuid4().hex[:8]}.img"
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    yield path
    delete_named(devcloud, name)


@pytest.fixture
def image_file(devcloud, tmp_path):
    yield from _random_file(devcloud, tmp_path, 6 * MiB)


@pytest.fixture
def bigger_file(devcloud, tmp_path):
    yield from _random_file(devcloud, tmp_path, 24 * MiB)


REPOS = ("devcloud-1", "devcloud-2")


def upload_to_both_and_wait(page, origin: str, path) -> None:
    """Upload ``path`` from the upload page at ``origin`` to both repos; wait for the job's end,
    done, the browser's own progress at 100%."""
    page.goto(f"{origin}/uploads/new/")
    page.set_input_files("#upload-file", str(path))
    for repo in REPOS:
        page.get_by_label(repo).check()
    page.get_by_role("button", name="Upload").click()
    done = page.locator("#upload-done")
    expect(done).to_be_visible(timeout=120_000)
    expect(done).to_have_attribute("data-state", "done")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")


def assert_held_whole(devcloud, path) -> None:
    """Each repo holds one active copy of the file, its sha256 the file's."""
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    for cloud in REPOS:
        (image,) = images_named(devcloud, path.name)[cloud]
        assert image.status == "active" and image.properties["glint_sha256"] == sha256


def test_upload_a_file_to_two_repos_and_watch_it_finish(devcloud, page, live_glint, image_file):
    problems = []

    def console(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} ({message.location})")

    page.on("console", console)
    upload_to_both_and_wait(page, live_glint.url, image_file)
    for repo in REPOS:
        expect(page.locator(f"#upload-targets li[data-repo='{repo}']")).to_contain_text("copied")
    assert not problems, problems  # no script error, no CSP violation

    assert_held_whole(devcloud, image_file)
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


def test_an_upload_whose_connection_breaks_resumes_from_the_byte_glint_holds(
    devcloud, browser, live_glint, bigger_file
):
    """The network cuts the file's PUT a third of the way in: the page asks Glint where the
    upload stands and sends only the rest, and both repos end with the whole file."""
    with CuttingProxy(live_glint.server.port, cut_after=8 * MiB) as proxy:
        context = signed_in_context(browser, live_glint, proxy.url)
        try:
            page = context.new_page()
            upload_to_both_and_wait(page, proxy.url, bigger_file)
            expect(page.locator("#upload-status")).to_have_attribute("data-resumed", "1")
        finally:
            context.close()
        assert proxy.cuts == 1, "the connection was cut mid-file"
    assert_held_whole(devcloud, bigger_file)
