"""An EC2 repo in the matrix, in a real browser: tick the EC2 cell of a raw Glance image's row,
apply the plan, and watch that cell follow the copy to done; the AMI is then in devcloud's EC2
peer (moto, patched like EC2). ``glint serve`` runs for real with a Glance and the peer."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from glint.clouds import RepoConnection, get_driver
from tests.browser.test_replication import JOB_TIMEOUT, LIVE, RAW, follow, open_matrix_with
from tests.ec2_peer import peer_client, peer_connection

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]

SOURCE, EC2 = "devcloud-1", "ec2"
PAYLOAD_BYTES = 3 * 2**20 + 4321  # not a whole number of EBS blocks


@pytest.fixture(scope="module")
def live_glint(devcloud, devcloud_ec2, pki, tmp_path_factory):
    """``glint serve`` whose group ``browser`` holds devcloud-1 and the EC2 peer."""
    from tests.live import start_live_glint

    yield from start_live_glint(
        devcloud,
        pki,
        tmp_path_factory.mktemp("live-glint-ec2"),
        clouds=(SOURCE,),
        ec2_peer=devcloud_ec2.ec2_peer,
        GLINT_JOB_RETRY_LIMIT="1",
    )


@pytest.fixture
def raw_image(devcloud, devcloud_ec2):
    """A raw image in devcloud-1 only; it and its AMI are deleted afterwards."""
    name = f"ec2-cell-{os.urandom(4).hex()}"
    drivers = [
        get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config(SOURCE))),
        get_driver(peer_connection(devcloud_ec2.ec2_peer)),
    ]
    drivers[0].create_and_write({"name": name, **RAW}, [os.urandom(PAYLOAD_BYTES)])
    yield name
    for driver in drivers:
        for image in driver.list_images():
            if image.name == name:
                driver.delete(image.id)
        driver.close()


def test_tick_an_ec2_cell_and_see_the_copy_done(page, live_glint, devcloud_ec2, raw_image):
    open_matrix_with(page, live_glint, raw_image)
    cell = page.locator("td.cell", has=page.locator(f'input[aria-label^="{raw_image} in {EC2}"]'))
    expect(cell).to_have_class(re.compile(r"\babsent\b"))

    page.get_by_role("checkbox", name=f"{raw_image} in {EC2}", exact=True).check()
    page.get_by_role("button", name="Apply changes").click()
    copies = page.locator("table.plan tr.item.planned.copy")
    expect(copies).to_have_count(1)
    expect(copies).to_contain_text(EC2)
    page.get_by_role("button", name="Apply: 1 copy, 0 deletes").click()
    expect(page.locator(".messages")).to_contain_text("1 job started")

    seen = follow(cell, r"\b(present|absent|failed)\b", timeout_ms=JOB_TIMEOUT)
    assert any(LIVE.search(classes) for classes in seen), f"never shown at work: {seen}"
    amis = peer_client(devcloud_ec2.ec2_peer).describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [raw_image]}]
    )["Images"]
    assert [a["State"] for a in amis] == ["available"], f"no AMI; the cell went {seen}"
    assert amis[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    assert "present" in seen[-1], f"the EC2 cell went {seen}"
    expect(cell.get_by_role("checkbox")).to_be_checked()
