"""Live parts of a page back off when the server is busy: after a 429 or 503 a polling element
waits out ``Retry-After`` (doubled for each refusal in a row) before it asks again, then resumes
its pace once answered.

The busy server is faked with Playwright's routing: a real ``glint serve`` cannot be made to
refuse one chosen poll on cue. Everything else is real: Chromium, htmx and Glint's own glint.js,
on a page like Glint's live parts (``hx-trigger="every 1s"``, outerHTML swap). The fake origin is
a loopback address, and every request to it is answered by the routes, so nothing leaves the
browser.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import glint

pytestmark = pytest.mark.browser

STATIC = Path(glint.__file__).parent / "web" / "static" / "glint"
ORIGIN = "http://127.0.0.1:9"
POLLER = '<div id="live" hx-get="/live" hx-trigger="every 1s" hx-swap="outerHTML">{}</div>'
PAGE = (
    '<!doctype html><html><head><script src="/static/htmx.min.js"></script>'
    '<script src="/static/glint.js"></script></head><body>'
    + POLLER.format("waiting")
    + "</body></html>"
)
RETRY_AFTER = 4


@pytest.fixture
def tab(browser):
    context = browser.new_context()
    tab = context.new_page()
    yield tab
    context.close()


@pytest.mark.parametrize("status", [429, 503])
def test_a_live_part_waits_out_retry_after_then_resumes(tab, status):
    polls: list[float] = []

    def answer(route):
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/":
            route.fulfill(body=PAGE, content_type="text/html")
        elif path.startswith("/static/"):
            route.fulfill(path=STATIC / path.removeprefix("/static/"))
        elif path == "/live":
            polls.append(time.monotonic())
            if len(polls) == 2:  # the second poll finds the server busy
                route.fulfill(status=status, headers={"Retry-After": str(RETRY_AFTER)}, body="busy")
            else:
                route.fulfill(body=POLLER.format(f"poll {len(polls)}"), content_type="text/html")
        else:
            route.abort()

    tab.route(f"{ORIGIN}/**", answer)
    tab.goto(f"{ORIGIN}/")
    deadline = time.monotonic() + 20
    while len(polls) < 5 and time.monotonic() < deadline:
        tab.wait_for_timeout(200)
    assert len(polls) >= 5, f"the live part stopped polling: {len(polls)} polls"
    gaps = [later - earlier for earlier, later in zip(polls, polls[1:])]
    # Without the back-off the refused poll would be followed a second later.
    assert gaps[1] >= RETRY_AFTER - 0.5, gaps
    # Answered again, it keeps its own pace.
    assert gaps[0] < RETRY_AFTER - 1 and gaps[-1] < RETRY_AFTER - 1, gaps
    assert tab.locator("#live").inner_text().startswith("poll ")
