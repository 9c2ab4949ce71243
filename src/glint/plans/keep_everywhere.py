"""The "Keep on all repos" loop of ``glint serve``: a daemon thread that enforces the flags.

Every :data:`CHECK_SECONDS` it runs ``services.enforce_keep_everywhere`` for each group that has
a flag, so a row reaches repos added later and comes back where it went missing. The check is
cheap when nothing is missing (one cached matrix per group, no job); a failure is logged and the
next round tries again.
"""

from __future__ import annotations

import logging
import threading

from glint.accounts.models import Group
from glint.plans.services import enforce_keep_everywhere
from glint.rounds import RoundThread

__all__ = ["CHECK_SECONDS", "start_keeper"]

log = logging.getLogger(__name__)

#: Seconds between two checks of every flag.
CHECK_SECONDS = 30.0


def _check_every_flag() -> None:
    for group in Group.objects.filter(keep_everywhere__isnull=False).distinct():
        try:
            enforce_keep_everywhere(group)
        except Exception:  # one group's trouble must not end the round for the others
            log.exception("keep-on-all-repos check of group %s failed", group.pk)


_keeper = RoundThread("glint-keeper", _check_every_flag, CHECK_SECONDS)


def start_keeper() -> threading.Thread:
    """Start this process's keeper thread (idempotent); ``glint serve`` calls it."""
    return _keeper.start()
