"""Open a cloud driver for a repo: the one place Glint calls ``get_driver``.

Whoever talks to a repo's cloud opens the driver here: the repo check (``repos.services``), the
inventory poller, downloads, the conflicts page's rename and the jobs app's engine adapter
(``glint.jobs.runners``). It lives in the repos app because a :class:`~glint.repos.models.Repo`
row is what holds a cloud's connection (and unseals its secrets), and every app that talks to
clouds is built on repos already: inventory, jobs, plans and transfers may all import this
module without importing upward or in a circle. The jobs app would be the wrong home, since
inventory (the poller) must never import jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glint.replication import CloudDriver, Ec2Connection, RepoConnection, get_driver

if TYPE_CHECKING:
    from glint.repos.models import Repo

__all__ = ["open_connection", "open_driver"]


def open_driver(repo: Repo, **timeouts: float) -> CloudDriver:
    """A driver for ``repo``'s cloud (use it as a context manager: it closes its session).

    The driver is the one of the repo's kind: ``Repo.connection`` gives an OpenStack repo a
    ``RepoConnection`` and an EC2 repo an ``Ec2Connection``, and ``get_driver`` picks by the
    record's ``kind``.

    Args:
        repo: The repo (saved or not).
        timeouts: ``connect_timeout`` / ``read_timeout`` in seconds, if not the defaults.

    Raises:
        ValueError: The repo's connection is incomplete, or its cloud kind unknown.
    """
    return get_driver(repo.connection(**timeouts))


def open_connection(connection: RepoConnection | Ec2Connection) -> CloudDriver:
    """A driver for a connection built beforehand (a repo being checked before it is saved, or
    a poll whose connection was read from the database in another thread)."""
    return get_driver(connection)
