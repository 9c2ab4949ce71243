"""Browser tests: Debian's Chromium driven by Playwright against the real ``glint serve``.

The server is this package's ``live_glint``: the real ``glint serve`` (poller, job runner, keeper)
with the devcloud's clouds as the repos of group ``browser``, whose failed job targets fail at
once instead of retrying for minutes, so a test can watch a failure and its Retry. The admin's
certificate is handed to Chromium through Playwright's ``client_certificates``. Chromium runs with
background networking off and every host name but the loopback ones mapped to NOTFOUND, so a page
reaches nothing beyond this machine.
"""

from __future__ import annotations

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="session")
def live_glint(devcloud, pki, tmp_path_factory):
    """One real ``glint serve`` (TLS) for the browser tests, with devcloud repos and a signed-in
    admin."""
    from tests.live import start_live_glint

    yield from start_live_glint(
        devcloud, pki, tmp_path_factory.mktemp("live-glint-browser"), GLINT_JOB_RETRY_LIMIT="1"
    )


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def signed_in_context(browser, live_glint, origin: str | None = None):
    """A fresh browser context that presents the admin's certificate to ``origin`` (by default
    the live server's own)."""
    context = browser.new_context(
        ignore_https_errors=True,  # the test CA is not in Chromium's trust store
        client_certificates=[
            {
                "origin": origin or live_glint.url,
                "certPath": str(live_glint.cert_file),
                "keyPath": str(live_glint.cert_file),
            }
        ],
        viewport={"width": 1280, "height": 720},
    )
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def page(browser, live_glint):
    """A fresh browser tab signed in as the admin of the ``browser`` group."""
    context = signed_in_context(browser, live_glint)
    yield context.new_page()
    context.close()
