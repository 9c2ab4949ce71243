"""The CLI's client waits out ``Retry-After`` when the server says it is busy (429 over the
per-person limit), so ``--watch`` and listings slow down instead of failing."""

from __future__ import annotations

import pytest

from glint.cli.api_client import GlintAPI
from glint.cli.config import ClientConfig
from tests.live import start_server


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("busy"),
        *pki.serve_args,
        GLINT_API_RATE_LIMIT="1/second",
    )
    yield running
    running.stop()


def test_a_get_over_the_rate_limit_is_retried_after_retry_after(server, pki, capsys):
    dn = server.add_user("Rita Ratelimited")
    _cert, _key, credential = pki.person("Rita Ratelimited")
    client = GlintAPI(
        ClientConfig(
            url=f"https://127.0.0.1:{server.port}",
            cert=str(credential),
            ca_file=str(pki.ca_file),
        )
    )
    assert client.get("whoami/")["dn"] == dn
    assert client.get("whoami/")["dn"] == dn  # the second within the second: 429, then a retry
    assert "server busy (HTTP 429); trying again in" in capsys.readouterr().err
