"""Replication in a real browser: tick a cell → the plan → Apply → the cell follows the job → done;
and a target that fails for real (its Glance stopped) shows failed with the reason, then its
Retry, once the Glance is back, ends done. Everything runs for real: ``glint serve`` with its
poller and job runner, two devcloud clouds on two Keystones, Chromium."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from glint.clouds import RepoConnection, get_driver

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]

SOURCE, TARGET = "devcloud-1", "devcloud-2"
RAW = {"disk_format": "raw", "container_format": "bare", "visibility": "private"}
#: Big enough that a copy takes a moment (the page sees it at work), small enough to be quick.
PAYLOAD_BYTES = 3 * 2**20
LIVE = re.compile(r"\b(queued|copying|verifying)\b")
JOB_TIMEOUT = 90_000


@pytest.fixture
def one_image(devcloud, request):
    """An image in devcloud-1 only, named after the test; every copy of it is deleted afterwards."""
    name = f"repl-{request.node.name[-20:]}"
    clouds = {
        cloud: get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config(cloud)))
        for cloud in (SOURCE, TARGET)
    }
    clouds[SOURCE].create_and_write({"name": name, **RAW}, [os.urandom(PAYLOAD_BYTES)])
    yield name
    devcloud.start(TARGET)  # in case the test stopped it and failed before starting it again
    for cloud in clouds.values():
        for image in cloud.list_images():
            if image.name == name:
                cloud.delete(image.id)
        cloud.close()


def target_cell(page, name: str):
    return page.locator("td.cell", has=page.locator(f'input[aria-label^="{name} in {TARGET}"]'))


def open_matrix_with(page, live_glint, name: str):
    """The matrix, once it shows ``name`` held in :data:`SOURCE` and verifiable: a background
    poll may have listed the image while it was still being uploaded (a cell present, but no
    hash yet, so nothing could copy it), and the row is ready only once the refresh has seen it
    finished (a verifiable row offers its download)."""
    page.goto(f"{live_glint.url}/images/")
    page.get_by_role("button", name="Refresh all").click()
    expect(page.locator("table.matrix")).to_contain_text(name, timeout=30_000)
    held = page.locator("td.cell", has=page.locator(f'input[aria-label="{name} in {SOURCE}"]'))
    expect(held).to_have_class(re.compile(r"\bpresent\b"), timeout=30_000)
    row = page.locator("table.matrix tr", has=held)
    expect(row.get_by_role("link", name="download")).to_be_visible(timeout=30_000)


def tick_and_apply(page, name: str):
    page.get_by_role("checkbox", name=f"{name} in {TARGET}", exact=True).check()
    page.get_by_role("button", name="Apply changes").click()
    expect(page.locator("h1")).to_contain_text("Plan")
    copies = page.locator("table.plan tr.item.planned.copy")
    expect(copies).to_have_count(1)
    expect(copies).to_contain_text(TARGET)
    expect(copies).to_contain_text(SOURCE)  # read from the copy the group owns
    page.get_by_role("button", name="Apply: 1 copy, 0 deletes").click()
    expect(page.locator(".messages")).to_contain_text("1 job started")


def follow(cell, until: str, timeout_ms: int = JOB_TIMEOUT) -> list[str]:
    """The cell's classes over time, until one matches ``until`` (the page updates itself)."""
    seen, deadline = [], time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        try:
            classes = cell.get_attribute("class", timeout=2_000) or ""
        except Exception:  # swapped or reloaded while we looked: look again
            continue
        if not seen or seen[-1] != classes:
            seen.append(classes)
        if re.search(until, classes):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"the cell never became {until!r}; it went {seen}")


def test_tick_plan_apply_progress_done(page, live_glint, one_image):
    open_matrix_with(page, live_glint, one_image)
    expect(target_cell(page, one_image)).to_have_class(re.compile(r"\babsent\b"))
    tick_and_apply(page, one_image)
    seen = follow(target_cell(page, one_image), r"\bpresent\b")
    assert any(LIVE.search(classes) for classes in seen), (
        f"the page never showed the job at work: {seen}"
    )
    expect(target_cell(page, one_image).get_by_role("checkbox")).to_be_checked()
    page.get_by_role("link", name="Jobs").click()
    job = page.locator("table.jobs tbody tr", has_text=one_image).first
    expect(job).to_contain_text("done")
    job.get_by_role("link").first.click()
    expect(page.locator("tr.target", has_text=TARGET)).to_contain_text("done")


def test_a_failed_target_shows_why_and_its_retry_ends_done(page, live_glint, devcloud, one_image):
    open_matrix_with(page, live_glint, one_image)
    devcloud.stop(TARGET)
    try:
        tick_and_apply(page, one_image)
        follow(target_cell(page, one_image), r"\bfailed\b")
        failed = target_cell(page, one_image)
        expect(failed.locator(".error")).not_to_be_empty()
    finally:
        devcloud.start(TARGET)
    failed.get_by_role("button", name="Retry").click()
    expect(page.locator(".messages")).to_contain_text("queued again")
    follow(target_cell(page, one_image), r"\bpresent\b")
