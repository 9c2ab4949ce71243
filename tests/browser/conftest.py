"""Browser tests: Debian's Chromium driven by Playwright against the real ``glint serve``.

The server is the session's ``live_glint`` (tests/conftest.py); the admin's certificate is handed
to Chromium through Playwright's ``client_certificates``. Chromium runs with background networking
off and every host name but the loopback ones mapped to NOTFOUND, so a page reaches nothing beyond
this machine.
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
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_glint):
    """A fresh browser tab signed in as the admin of the ``browser`` group."""
    context = browser.new_context(
        ignore_https_errors=True,  # the test CA is not in Chromium's trust store
        client_certificates=[{"origin": live_glint.url, "certPath": str(live_glint.cert_file),
                              "keyPath": str(live_glint.cert_file)}],
        viewport={"width": 1280, "height": 720},
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    context.close()
