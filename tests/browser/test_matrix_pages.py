"""A person's tour of the matrix in a real browser: switch group, filter, hide and show a row,
download an image, open the conflicts page and an image's detail page. The run also takes the
README's screenshot when ``GLINT_SCREENSHOT`` names a file to write it to."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from glint.clouds import RepoConnection, get_driver
from tests.live import LIVE_GROUP as GROUP
from tests.live import LIVE_OTHER_GROUP as OTHER_GROUP

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]

RAW = {"disk_format": "raw", "container_format": "bare", "visibility": "private"}
CENTOS = b"centos" * 4096


@pytest.fixture(scope="module")
def images(devcloud):
    """The same image in both clouds, and a name whose content differs between them (a conflict)."""
    drivers, created = [], []
    for cloud_name, payloads in (
        ("devcloud-1", {"browser-centos": CENTOS, "browser-drift": b"version one" * 500}),
        (
            "devcloud-2",
            {
                "browser-centos": CENTOS,
                "browser-drift": b"version two" * 500,
                "browser-scratch": b"scratch" * 300,
            },
        ),
    ):
        driver = get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config(cloud_name)))
        drivers.append(driver)
        for name, data in payloads.items():
            created.append((driver, driver.create_and_write({"name": name, **RAW}, [data]).id))
    yield
    for driver, image_id in created:
        driver.delete(image_id)
    for driver in drivers:
        driver.close()


def open_matrix(page, live_glint):
    page.goto(f"{live_glint.url}/images/")
    page.get_by_role("button", name="Refresh all").click()
    # The page re-checks the poll itself and reloads when it has ended.
    expect(page.locator("table.matrix")).to_contain_text("browser-scratch", timeout=30_000)


def downloaded(page, link) -> bytes:
    """Click a download link and return the bytes the browser saved."""
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "browser-centos.img"
    return Path(download.path()).read_bytes()


def test_matrix_filter_hide_show_conflicts_detail_and_group_switch(page, live_glint, images):
    open_matrix(page, live_glint)
    centos = page.locator("tr", has_text="browser-centos")
    expect(centos.locator("td.cell.present")).to_have_count(
        2
    )  # one row: the same bytes in both clouds
    expect(page.locator("#conflicts-banner")).to_be_visible()
    if os.environ.get("GLINT_SCREENSHOT"):
        page.screenshot(path=os.environ["GLINT_SCREENSHOT"], full_page=True)

    assert downloaded(page, centos.get_by_role("link", name="download")) == CENTOS

    page.get_by_placeholder("filter by name").fill("centos")
    page.get_by_role(
        "button", name="Apply", exact=True
    ).click()  # the filter's, not "Apply changes"
    expect(page.locator("table.matrix tbody tr")).to_have_count(1)

    page.goto(f"{live_glint.url}/images/")
    page.locator("tr", has_text="browser-scratch").get_by_role("button", name="Hide").click()
    expect(page.locator("tr.moved")).to_contain_text("moved to Hidden images")
    page.get_by_role("link", name=re.compile(r"Hidden images \(\d+\)")).click()
    hidden_row = page.locator("tr", has_text="browser-scratch")
    expect(hidden_row).to_be_visible()
    hidden_row.get_by_role("button", name="Show").click()
    expect(page.locator("tr.moved")).to_contain_text("moved to Images")  # before leaving the page
    page.goto(f"{live_glint.url}/images/")
    expect(page.locator("tr", has_text="browser-scratch")).to_be_visible()

    page.get_by_role("link", name="Review conflicts").click()
    expect(page.locator("main")).to_contain_text("browser-drift")

    page.goto(f"{live_glint.url}/images/")
    page.get_by_role("link", name="browser-centos").click()
    expect(page.locator("main")).to_contain_text("devcloud-1")
    expect(page.locator("main")).to_contain_text("devcloud-2")
    assert downloaded(page, page.get_by_role("link", name="Download")) == CENTOS

    page.select_option("#group-select", label=OTHER_GROUP)
    expect(page.locator("h1")).to_contain_text(OTHER_GROUP)
    expect(page.locator("main")).not_to_contain_text("browser-centos")
    page.select_option("#group-select", label=GROUP)
    expect(page.locator("h1")).to_contain_text(GROUP)
