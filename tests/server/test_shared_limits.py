"""The per-person API limit is one limit however many processes serve: two ``glint serve`` on
one data directory (as ``--workers N`` forks, or a web process beside another) count together."""

from __future__ import annotations

from tests.live import client_context, https_get, start_server

LIMIT = 4


def test_two_servers_on_one_data_directory_enforce_one_limit(pki, tmp_path):
    data_dir = tmp_path / "data"
    tls = ["--cert", str(pki.server_file), "--key", str(pki.server_file)]
    tls += ["--client-ca", str(pki.ca_file)]
    first = start_server(data_dir, *tls, GLINT_API_RATE_LIMIT=f"{LIMIT}/minute")
    second = start_server(
        data_dir, *tls, log_name="serve-2.log", GLINT_API_RATE_LIMIT=f"{LIMIT}/minute"
    )
    try:
        first.add_user("Sam Shared")
        _cert, _key, credential = pki.person("Sam Shared")
        context = client_context(pki, credential)
        statuses = [
            https_get(server.port, "/api/v1/whoami/", context)[0]
            for server in [first, second] * LIMIT
        ]
        # Counted apart, each server would have allowed LIMIT calls: all eight would pass.
        assert statuses[:LIMIT] == [200] * LIMIT
        assert statuses[LIMIT:] == [429] * LIMIT
    finally:
        first.stop()
        second.stop()
