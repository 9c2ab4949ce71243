"""``/metrics``' per-repo poll series follow real polls of the devcloud: a poll that fails (the
repo's Keystone refuses the connection) raises the repo's error counter and its failures in a
row; a poll that succeeds again resets the second, never the first."""

from __future__ import annotations

import pytest
from django.test import Client

from glint.inventory.poller import poll_repos
from glint.repos.models import Repo
from tests.devcloud_repos import add_devcloud_repo
from tests.live import free_port

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db]


def repo_series(repo: Repo) -> dict[str, float]:
    """The repo's ``glint_repo_*`` series of ``/metrics``, by name (a probe's request)."""
    labels = f'{{repo="{repo.pk}",group="{repo.group_id}"}}'
    found = {}
    for line in Client().get("/metrics").content.decode().splitlines():
        name, _, value = line.partition(labels)
        if value:
            found[name] = float(value)
    return found


def test_a_failed_poll_raises_the_repos_poll_failure_series(devcloud, group_a):
    repo = add_devcloud_repo(devcloud, group_a, "devcloud-2", name="metered")
    (ok,) = poll_repos([repo])
    assert ok.ok, ok.error
    before = repo_series(repo)
    assert before["glint_repo_poll_success"] == 1 and before["glint_repo_poll_failures"] == 0

    working = repo.auth_url
    Repo.objects.filter(pk=repo.pk).update(auth_url=f"https://127.0.0.1:{free_port()}/v3")
    for failed_polls in (1, 2):
        repo.refresh_from_db()
        (result,) = poll_repos([repo])
        assert not result.ok
        now = repo_series(repo)
        assert now["glint_repo_poll_errors_total"] == before["glint_repo_poll_errors_total"] + (
            failed_polls
        )
        assert now["glint_repo_poll_failures"] == failed_polls
        assert now["glint_repo_poll_success"] == 0
        assert now["glint_repo_polls_total"] == before["glint_repo_polls_total"] + failed_polls

    Repo.objects.filter(pk=repo.pk).update(auth_url=working)
    repo.refresh_from_db()
    (again,) = poll_repos([repo])
    assert again.ok, again.error
    after = repo_series(repo)
    assert after["glint_repo_poll_failures"] == 0 and after["glint_repo_poll_success"] == 1
    assert after["glint_repo_poll_errors_total"] == before["glint_repo_poll_errors_total"] + 2
