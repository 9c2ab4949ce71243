"""Audit: a write-once record of every state-changing action.

Services call :func:`record` once per action, after they know the outcome::

    from glint import audit
    audit.record("repo.add", repo=repo)  # who: the person of the current request
    audit.record("repo.add", group=group, outcome=audit.FAILED, details={"reason": exc.message})
    audit.record(
        "job.copy", user=job.requester, group=job.group, image=name, details={"job": job.pk}
    )

Action codes are dotted ``<object>.<verb>`` strings (``repo.delete``, ``user.add``,
``membership.role``, ``access.request``, ...). Refused state-changing requests are recorded by
``glint.audit.middleware`` without the views having to do anything.
"""

from __future__ import annotations

import logging
import re

from glint.current_request import current_request, current_request_id

__all__ = ["FAILED", "OK", "REFUSED", "record"]

OK, REFUSED, FAILED = "ok", "refused", "failed"
CURRENT = object()  # ``user`` default: the person of the request being served
#: Detail keys whose values are never stored, whatever a caller passes.
SECRET_KEY = re.compile(r"pass|secret|token|credential|key", re.IGNORECASE)
REDACTED = "[redacted]"

logger = logging.getLogger("glint.audit")


def _scrub(value):
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if SECRET_KEY.search(str(k)) else _scrub(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _actor(user, dn: str | None):
    """(user or None, DN) of who acted: explicit arguments first, else the current request."""
    request = current_request()
    if user is CURRENT:
        candidate = getattr(request, "user", None)
        user = candidate if candidate is not None and candidate.is_authenticated else None
    if dn is None:
        if user is not None:
            dn = user.dn
        else:
            identity = getattr(request, "identity", None)
            dn = identity.subject_dn if identity is not None else ""
    return user, dn


def record(
    action: str,
    *,
    outcome: str = OK,
    group=None,
    repo=None,
    image: str = "",
    details: dict | None = None,
    user=CURRENT,
    dn: str | None = None,
):
    """Write one audit record and return it.

    Args:
        action: What happened, a dotted code such as ``repo.add`` or ``job.copy``.
        outcome: ``OK``, ``REFUSED`` or ``FAILED``.
        group: The ``accounts.Group`` concerned (default: the repo's group).
        repo: The ``repos.Repo`` concerned.
        image: The image concerned (its name, or name and hash), as text.
        details: Plain JSON values; keys that look like secrets (password, token, key...) are
            replaced by ``[redacted]``.
        user: Who acted; default the person of the current request, None for Glint itself (the
            command line, a background job without a requester).
        dn: The DN to store when there is no user (an unknown certificate); default the user's DN.
    """
    from glint.audit.models import AuditRecord

    user, dn = _actor(user, dn)
    if group is None and repo is not None:
        group = repo.group
    entry = AuditRecord.objects.create(
        request_id=current_request_id(),
        user=user,
        user_dn=dn,
        action=action,
        outcome=outcome,
        group_ref=group.pk if group is not None else None,
        group_name=group.name if group is not None else "",
        repo_ref=repo.pk if repo is not None else None,
        repo_name=repo.name if repo is not None else "",
        image=str(image or ""),
        details=_scrub(details or {}),
    )
    logger.info(
        "%s %s by %s%s%s",
        action,
        outcome,
        dn or "glint",
        f" group={entry.group_name}" if group else "",
        f" repo={entry.repo_name}" if repo else "",
    )
    return entry
