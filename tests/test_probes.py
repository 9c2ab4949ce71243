"""``/readyz`` says ready only while the database and the configured broker answer (a load
balancer then stops sending requests to a Glint that cannot start jobs)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.redis_server import running_redis

pytestmark = pytest.mark.django_db


def test_readyz_follows_the_broker(tmp_path, settings):
    with running_redis(tmp_path, "probe-secret") as url:
        settings.GLINT_BROKER_URL = url
        assert Client().get("/readyz").json() == {"status": "ready"}
    down = Client().get("/readyz")  # redis-server is gone now
    assert down.status_code == 503 and down.json() == {"status": "broker unavailable"}
    assert "probe-secret" not in down.content.decode()
    assert Client().get("/healthz").status_code == 200, "the process itself is alive"


def test_readyz_needs_no_broker_when_none_is_configured(settings):
    settings.GLINT_BROKER_URL = ""
    assert Client().get("/readyz").json() == {"status": "ready"}
