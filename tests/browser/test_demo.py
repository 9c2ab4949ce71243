"""The README's demo command, as a new user runs it: two OpenStack clouds, the EC2 peer and the
sample image in a browser.

``scripts/demo`` first installs what is missing, then runs ``scripts/demo.py``; the installing
part is what ``scripts/test`` (this very run) has just done, so the test runs ``demo.py`` itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import expect

import devcloud
from tests.live import free_port, glint_env

pytestmark = [pytest.mark.devcloud, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]


def wait_for_line(log: Path, text: str, process: subprocess.Popen, seconds: int = 240) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(
                f"the demo did not get to {text!r}:\n{log.read_text(errors='replace')[-4000:]}"
            )
        time.sleep(0.5)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_demo_shows_its_clouds_and_the_sample_image(browser, tmp_path, stop):
    port, work = free_port(), tmp_path / "demo"
    log = tmp_path / "demo.log"
    env = glint_env(work / "data")
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts/demo.py"),
                "--dir",
                str(work),
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        wait_for_line(log, "Glint demo is running", demo)
        wait_for_line(log, "glint serve: direct TLS", demo, seconds=60)
        pki = work / "pki"
        # The browser bundle the demo tells people to import opens with the printed password.
        _key, p12_cert, _chain = pkcs12.load_key_and_certificates(
            (pki / "admin.p12").read_bytes(), b"glint-demo"
        )
        assert p12_cert == x509.load_pem_x509_certificate((pki / "admin.pem").read_bytes())
        context = browser.new_context(
            ignore_https_errors=True,
            client_certificates=[
                {
                    "origin": f"https://127.0.0.1:{port}",
                    "certPath": str(pki / "admin.pem"),
                    "keyPath": str(pki / "admin-key.pem"),
                }
            ],
        )
        page = context.new_page()
        page.goto(f"https://127.0.0.1:{port}/")
        expect(page.locator("table.matrix thead")).to_contain_text("devcloud-1")
        expect(page.locator("table.matrix thead")).to_contain_text("devcloud-2")
        expect(page.locator("table.matrix thead")).to_contain_text("ec2")
        expect(page.locator("table.matrix tbody")).to_contain_text(
            "demo-cirros-like", timeout=30_000
        )
        context.close()
    finally:
        demo.send_signal(stop)
        demo.wait(timeout=120)
    assert demo.returncode == 0, log.read_text(errors="replace")[-4000:]
    assert devcloud.Devcloud.load(work / "devcloud").pids() == [], (
        f"{stop.name} left demo clouds running"
    )
