"""Subscribing from the page in a real browser: a manager fills in the list's URL, its endorser and
the repos, the list is verified at once, and the listed images appear in the matrix as the
subscription's rows, their cells greyed because the subscription keeps them."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.jobs.images import delete_named
from tests.subscriptions.helpers import (
    LIST_PATH,
    publish,
    start_subscribing_glint,
    wait_for_images,
)
from tests.subscriptions.lists import Endorser, image

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]
CLOUDS = ("devcloud-1", "devcloud-2")


@pytest.fixture(scope="module")
def live_glint(devcloud, pki, tmp_path_factory):
    """This module's own ``glint serve``, whose fetcher may reach the loopback list server."""
    yield from start_subscribing_glint(
        devcloud, pki, tmp_path_factory.mktemp("browser-subscriptions")
    )


def test_a_manager_subscribes_from_the_page_and_the_rows_appear(
    page, live_glint, pki, devcloud, web
):
    prefix = f"page-{uuid.uuid4().hex[:6]}-"
    endorser = Endorser.of(pki.ca, "Page Publisher")
    publish(web, endorser, [image("gamma", os.urandom(64 * 1024))], version="3")
    name = f"{prefix}gamma"
    try:
        page.goto(f"{live_glint.url}/images/")
        page.get_by_role("link", name="Subscriptions").click()
        expect(page.get_by_role("heading", name=re.compile("Subscriptions of"))).to_be_visible()
        page.get_by_label(re.compile(r"^Name:?$")).fill("page list")
        page.get_by_label("List URL").fill(web.url(LIST_PATH))
        page.get_by_label("Endorser DN").fill(endorser.dn)
        page.get_by_label("Endorser's CA DN").fill(endorser.ca_dn)
        for cloud in CLOUDS:
            page.get_by_label(cloud).check()
        page.get_by_label("Name prefix").fill(prefix)
        page.get_by_role("button", name="Subscribe").click()

        expect(page.locator("body")).to_contain_text("page list: list version 3 in force")
        expect(page.locator("body")).to_contain_text(f"fetching {name}")
        wait_for_images(devcloud, [name], CLOUDS)

        page.goto(f"{live_glint.url}/images/")
        page.get_by_role("button", name="Refresh all").click()
        row = page.locator("table.matrix tr", has_text=name)
        expect(row).to_contain_text("from list Glint test list v3", timeout=30_000)
        expect(row).to_contain_text("signed by")
        expect(row).to_contain_text("kept by subscription page list")
        boxes = row.locator("input[type=checkbox]")
        expect(boxes).to_have_count(len(CLOUDS))
        for index in range(len(CLOUDS)):
            expect(boxes.nth(index)).to_be_disabled()
    finally:
        delete_named(devcloud, name)
