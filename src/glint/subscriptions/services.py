"""Subscribing, changing and unsubscribing: what the page, the API and the CLI share.

Managers of a group (and admins) manage its subscriptions; every change is audited, never with
the list's URL credentials or token. A new subscription is refreshed at once by the caller
(``refresh.refresh``) so a person sees at once whether the list verifies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from glint import audit, validators
from glint.accounts.choices import Role
from glint.accounts.dn import DNError, canonical_from_string
from glint.accounts.models import Group, User
from glint.inventory.models import Image
from glint.replication import ConflictPolicy
from glint.repos.models import Repo
from glint.subscriptions.choices import OnRemoval
from glint.subscriptions.models import PROPERTY_PREFIX, Subscription
from glint.transfers import fetch
from glint.transfers.errors import TransferError
from glint.transfers.upload_job import fetch_policy

__all__ = [
    "MIN_REFRESH_SECONDS",
    "ListedCopies",
    "SubscriptionRefused",
    "listed_copies",
    "save_subscription",
    "unsubscribe",
    "visible_subscriptions",
]

#: A list is not fetched more often than this.
MIN_REFRESH_SECONDS = 60


class SubscriptionRefused(Exception):
    """The subscription cannot be saved; ``field`` names the input at fault (None: all)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def visible_subscriptions(user: User):
    return Subscription.objects.filter(group__in=user.visible_groups()).select_related("group")


def _require_manager(user: User, group: Group) -> None:
    if user.role_in(group) != Role.MANAGER:
        raise PermissionDenied("Only managers of this group (or admins) manage its subscriptions.")


def _canonical(value: str, field: str) -> str:
    try:
        return canonical_from_string(value)
    except DNError as exc:
        raise SubscriptionRefused(f"Not a DN: {exc}", field) from None


def save_subscription(
    user: User,
    subscription: Subscription,
    *,
    targets: Iterable[Repo],
    url: str | None = None,
    token: str | None = None,
    endorser_dn: str,
    endorser_ca: str,
) -> Subscription:
    """Check and save a new or changed subscription (its plain fields already set).

    ``url`` and ``token`` are set when given (None keeps the stored ones; an empty token removes
    it). The endorser DNs may be given in any accepted form; they are stored canonical.

    Raises:
        PermissionDenied: ``user`` does not manage the group.
        SubscriptionRefused: A bad field, with its reason.
    """
    group = subscription.group
    _require_manager(user, group)
    problem = validators.text_problem(subscription.name or "")
    if problem or not subscription.name.strip():
        raise SubscriptionRefused(problem or "Give the subscription a name.", "name")
    problem = validators.text_problem(subscription.name_prefix)
    if problem:
        raise SubscriptionRefused(problem, "name_prefix")
    subscription.endorser_dn = _canonical(endorser_dn, "endorser_dn")
    subscription.endorser_ca = _canonical(endorser_ca, "endorser_ca")
    if url is not None:
        try:
            fetch.resolve(url, fetch_policy())
        except TransferError as exc:
            raise SubscriptionRefused(exc.message, "url") from None
        subscription.url, subscription.url_shown = url, fetch.redact(url)
    if not subscription.url_shown:
        raise SubscriptionRefused("Give the list's URL.", "url")
    if token is not None:
        if token and ":" not in token:
            raise SubscriptionRefused("A token is user:password (sent as basic auth).", "token")
        subscription.token = token
    if subscription.refresh_seconds < MIN_REFRESH_SECONDS:
        raise SubscriptionRefused(
            f"Refresh at most every {MIN_REFRESH_SECONDS} seconds.", "refresh_seconds"
        )
    if subscription.on_removal not in OnRemoval.values:
        raise SubscriptionRefused(f"Use one of {', '.join(OnRemoval.values)}.", "on_removal")
    policies = [p.value for p in ConflictPolicy]
    if subscription.conflict_policy not in policies:
        raise SubscriptionRefused(
            f"Unknown conflict policy {subscription.conflict_policy!r}: use one of "
            f"{', '.join(policies)}.",
            "conflict_policy",
        )
    if not isinstance(subscription.images, list) or not all(
        isinstance(i, str) and i.strip() for i in subscription.images
    ):
        raise SubscriptionRefused("Images are list identifiers (text).", "images")
    targets = list(targets)
    if not targets:
        raise SubscriptionRefused(
            "Choose at least one repo to keep the list's images in.", "targets"
        )
    for repo in targets:
        if repo.group_id != group.pk:
            raise SubscriptionRefused(f"Repo {repo.name} is not one of this group's.", "targets")
    created = subscription.pk is None
    try:
        with transaction.atomic():
            subscription.save()
            subscription.targets.set(targets)
    except IntegrityError:
        raise SubscriptionRefused(
            "This group already has a subscription with this name.", "name"
        ) from None
    audit.record(
        "subscription.add" if created else "subscription.update",
        user=user,
        group=group,
        details={
            "subscription": subscription.pk,
            "name": subscription.name,
            "url": subscription.url_shown,
            "endorser": subscription.endorser_dn,
            "targets": sorted(repo.name for repo in targets),
            "on_removal": subscription.on_removal,
            "conflict_policy": subscription.conflict_policy,
        },
    )
    return subscription


def unsubscribe(user: User, subscription: Subscription) -> None:
    """Remove the subscription. Images already in the repos stay (they are ordinary rows now)."""
    _require_manager(user, subscription.group)
    audit.record(
        "subscription.delete",
        user=user,
        group=subscription.group,
        details={"subscription": subscription.pk, "name": subscription.name},
    )
    subscription.delete()


# What the matrix and the planner need to know


@dataclass(frozen=True)
class ListedCopies:
    """The copies in a group's repos that its subscriptions brought in.

    Attributes:
        by_image: Image pk → the subscription whose list the copy carries (any repo).
        keepers: Image pk → subscription, for those copies that sit in one of their
            subscription's target repos: the subscription keeps them there, so a person does not
            delete them by hand (the next refresh would fetch them again) but changes the
            subscription instead.
    """

    by_image: dict[int, Subscription]
    keepers: dict[int, Subscription]

    def subscription_of(self, copies) -> Subscription | None:
        """The subscription of the first of ``copies`` (matrix ``Copy`` records) it brought in."""
        return next((self.by_image[c.pk] for c in copies if c.pk in self.by_image), None)


def listed_copies(group: Group) -> ListedCopies:
    """Which of ``group``'s copies carry one of its subscriptions' lists (one query each for the
    subscriptions and the copies)."""
    subscriptions = {
        s.list_identifier: s
        for s in group.subscriptions.exclude(list_identifier="").prefetch_related("targets")
    }
    if not subscriptions:
        return ListedCopies({}, {})
    key = f"properties__{PROPERTY_PREFIX}id"
    found = Image.objects.filter(repo__group=group, **{f"{key}__in": list(subscriptions)})
    by_image, keepers = {}, {}
    for pk, repo_id, list_identifier in found.values_list("pk", "repo_id", key):
        subscription = subscriptions[list_identifier]
        by_image[pk] = subscription
        if any(repo.pk == repo_id for repo in subscription.targets.all()):
            keepers[pk] = subscription
    return ListedCopies(by_image, keepers)
