"""Shapes of plans in the API: ``POST /api/v1/plans/`` in, a plan with one verdict per change out."""

from rest_framework import serializers

from glint.plans.choices import Action
from glint.plans.models import Plan, PlanItem


class ChangeSerializer(serializers.Serializer):
    """One changed cell: a matrix row id, a repo id, and what to do there."""

    row = serializers.RegexField(r"^[0-9]+-[0-9a-f]{16}$", max_length=40)
    repo = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=Action.choices)


class PlanRequestSerializer(serializers.Serializer):
    """A plan request: the cells changed, and the inventory version the page or listing showed."""

    group = serializers.IntegerField()
    changes = ChangeSerializer(many=True, allow_empty=False, max_length=10_000)
    inventory_version = serializers.CharField(max_length=2000)
    force = serializers.BooleanField(default=False, help_text="Admins only: delete public, shared or "
                                                              "community images too.")


class PlanItemSerializer(serializers.ModelSerializer):
    """The planner's verdict on one change: planned, noop (with why) or refused (with why)."""

    row = serializers.CharField(source="row_id")
    repo = serializers.IntegerField(source="repo_id", allow_null=True)
    source = serializers.SerializerMethodField()
    job = serializers.IntegerField(source="job_id", allow_null=True)

    class Meta:
        model = PlanItem
        fields = ["row", "repo", "action", "status", "reason", "name", "repo_name", "source", "job"]

    def get_source(self, item) -> dict | None:
        """For a planned copy: the repo and image id it is copied from."""
        if item.source is None:
            return None
        return {"repo": item.source.repo_id, "image_id": item.source.image_id}


class PlanSerializer(serializers.ModelSerializer):
    items = PlanItemSerializer(many=True, read_only=True)
    inventory_version = serializers.CharField(source="shown_version")
    jobs = serializers.ListField(source="job_ids", child=serializers.IntegerField())
    created_by = serializers.CharField(source="created_by.display_dn", default=None)

    class Meta:
        model = Plan
        fields = ["id", "group", "state", "created", "created_by", "inventory_version", "planned_version",
                  "force", "items", "jobs"]


class ApplySerializer(serializers.Serializer):
    jobs = serializers.ListField(child=serializers.IntegerField())
