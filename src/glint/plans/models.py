"""Plans of matrix changes, and the "Keep on all repos" flag.

A plan is stored, not just computed: the confirmation page and ``POST /api/v1/plans/{id}/apply/``
refer to it by id, it can be applied once, and it keeps the inventory version the person's page
showed next to the one it was decided against, which is how a stale page is told apart.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from glint.plans.choices import Action, ItemStatus, PlanState

__all__ = ["KeepEverywhere", "Plan", "PlanItem"]


class Plan(models.Model):
    """A set of cell changes one person asked for in one group, with the planner's verdicts.

    Fields:
        shown_version: The inventory version the person's page (or listing) showed.
        planned_version: The version of the fresh inventory the items were decided against.
        force: An admin asked to delete public/shared/community images too.
        job_ids: The jobs ``apply`` created, in item order.
    """

    group = models.ForeignKey("accounts.Group", on_delete=models.CASCADE, related_name="plans")
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    shown_version = models.CharField(_("version the page showed"), max_length=2000)
    planned_version = models.CharField(_("version planned against"), max_length=2000)
    force = models.BooleanField(_("forced by an admin"), default=False)
    state = models.CharField(
        _("state"), max_length=10, choices=PlanState.choices, default=PlanState.OPEN
    )
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    applied_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job_ids = models.JSONField(_("jobs"), default=list)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"plan {self.pk} in {self.group_id} ({self.state})"

    def count(self, status: str) -> int:
        return sum(1 for item in self.items.all() if item.status == status)


class PlanItem(models.Model):
    """The planner's verdict on one cell change.

    Fields:
        row_id, name, content_key: The matrix row (its identity, so the item reads well after
            the row is gone).
        repo, repo_name: The cell's column.
        source: For a planned copy, the image it is copied from.
        images: For a planned delete, the pks of the ``inventory.Image`` rows to delete.
        reason: Why it is refused or a no-op (empty when planned).
        job_id: The job that carries it, once applied.
    """

    plan = models.ForeignKey("plans.Plan", on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    row_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    content_key = models.CharField(max_length=300, blank=True)
    repo = models.ForeignKey(
        "repos.Repo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    repo_name = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    status = models.CharField(max_length=10, choices=ItemStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    source = models.ForeignKey(
        "inventory.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    images = models.JSONField(default=list)
    job_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "position"]

    def __str__(self) -> str:
        return f"{self.action} {self.name} @ {self.repo_name}: {self.status}"


class KeepEverywhere(models.Model):
    """ "Keep on all repos": a group wants this row in every one of its repos, now and later.

    Keyed by the row's identity (name + content key), like ``inventory.HiddenRow``.
    ``glint.plans.services.enforce_keep_everywhere`` submits the missing copies, including to
    repos added later, and writes down the repos it could not reach.

    Fields:
        unreachable: ``[{"repo": id, "name": ..., "reason": ...}]`` from the last check.
        checked_at: When the last check ran.
    """

    group = models.ForeignKey(
        "accounts.Group", on_delete=models.CASCADE, related_name="keep_everywhere"
    )
    name = models.CharField(max_length=255, blank=True)
    content_key = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    unreachable = models.JSONField(default=list)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name", "content_key"],
                name="%(app_label)s_%(class)s_unique_group_row",
                violation_error_message="This row is already kept on all repos.",
            )
        ]

    def __str__(self) -> str:
        return f"keep {self.name} {self.content_key} everywhere"
