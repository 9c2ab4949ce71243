"""Fixtures for the replication tests: drivers on the real devcloud, source images made on the
fly, and cleanup of every image a test leaves in any cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.replication.helpers import Clouds


@pytest.fixture
def clouds(devcloud) -> Iterator[Clouds]:
    helper = Clouds(devcloud)
    yield helper
    helper.cleanup()
