"""A real ``glint serve`` on its own PostgreSQL and Redis: ``/readyz`` answers 503 with the reason
while the broker is down, is ready again once it is back, and answers 503 ``database
unavailable`` once PostgreSQL is stopped (``/healthz`` still answers: the process lives)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from tests.live import run_glint, start_server
from tests.redis_server import running_redis_server

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
pytestmark = pytest.mark.timeout(180)


def _get(server, pki, path: str) -> requests.Response:
    return requests.get(
        f"https://127.0.0.1:{server.port}{path}", verify=str(pki.ca_file), timeout=30
    )


def test_readyz_fails_with_the_reason_while_the_broker_or_the_database_is_down(tmp_path, pki):
    # Not under tmp_path: PostgreSQL runs as its own user (when the tests run as root), which
    # cannot enter pytest's private directories.
    run_dir = Path(tempfile.mkdtemp(prefix="glint-readyz-pg."))
    run_dir.chmod(0o755)
    pg_dir = run_dir / "pg"
    port = subprocess.run(
        [SCRIPTS / "postgres", "start", str(pg_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    try:
        with running_redis_server(tmp_path, "readyz-redis-3a9f") as broker:
            settings = {
                "GLINT_DATABASE_URL": f"postgresql://glint@127.0.0.1:{port}/glint",
                "GLINT_JOB_RUNNER": "celery",
                "GLINT_BROKER_URL": broker.url,
            }
            assert run_glint(tmp_path / "data", "migrate", **settings).returncode == 0
            server = start_server(tmp_path / "data", *pki.serve_args, **settings)
            try:
                assert _get(server, pki, "/readyz").json() == {"status": "ready"}
                broker.stop()
                down = _get(server, pki, "/readyz")
                assert down.status_code == 503, down.text
                assert down.json() == {"status": "broker unavailable"}
                broker.start()
                assert _get(server, pki, "/readyz").json() == {"status": "ready"}

                subprocess.run([SCRIPTS / "postgres", "stop", str(pg_dir)], check=True, timeout=60)
                no_database = _get(server, pki, "/readyz")
                assert no_database.status_code == 503, no_database.text
                assert no_database.json() == {"status": "database unavailable"}
                assert _get(server, pki, "/healthz").status_code == 200
                assert "readyz-redis-3a9f" not in server.log()
            finally:
                server.stop()
    finally:
        subprocess.run([SCRIPTS / "postgres", "stop", str(pg_dir)], check=False, timeout=60)
        shutil.rmtree(run_dir, ignore_errors=True)
