"""Shapes of plans in the API: ``POST /api/v1/plans/`` in, a plan with one verdict per change out;
and of the matrix the plans are made on: rows, cells and conflicts (read-only: they are computed,
not stored).
"""

from functools import cached_property

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from glint.inventory.api.serializers import ImageSerializer
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
    force = serializers.BooleanField(
        default=False, help_text="Admins only: delete public, shared or community images too."
    )


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
        fields = [
            "id",
            "group",
            "state",
            "created",
            "created_by",
            "inventory_version",
            "planned_version",
            "force",
            "items",
            "jobs",
        ]


class ApplySerializer(serializers.Serializer):
    jobs = serializers.ListField(child=serializers.IntegerField())


class CopySerializer(serializers.Serializer):
    """One image in one repo, as the matrix knows it."""

    repo = serializers.IntegerField(source="repo_id")
    image_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    disk_format = serializers.CharField(help_text="The format this copy stores (EC2: raw).")
    made_from = serializers.CharField(
        source="glint_made_from",
        help_text="For a copy Glint converted: sha256:<hex> of the bytes it was made from.",
    )
    owner = serializers.CharField()
    visibility = serializers.CharField()


class CellSerializer(serializers.Serializer):
    """One repo's cell of a row, as the matrix page shows it: what the last poll found, unless a
    job speaks for the cell (in the list; a row's own page shows the polled cells)."""

    repo = serializers.IntegerField()
    state = serializers.CharField(
        help_text="present, foreign or absent (polled); queued, copying, verifying, "
        "deleting or failed (a job's)"
    )
    progress = serializers.IntegerField(allow_null=True, help_text="Percent copied, while copying.")
    reason = serializers.CharField(help_text="Why a job's target failed (or is being retried).")
    copies = CopySerializer(many=True)


class RowSubscriptionSerializer(serializers.Serializer):
    """The subscription whose signed list brought a row in; its cells in the subscription's repos
    are the subscription's to change (the planner refuses deleting them by hand)."""

    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    list_identifier = serializers.CharField()
    list_title = serializers.CharField()
    list_version = serializers.CharField()
    endorser_dn = serializers.CharField(source="endorser_shown")
    endorser_ca = serializers.CharField()
    targets = serializers.SerializerMethodField()

    def get_targets(self, subscription) -> list[int]:
        return sorted(repo.pk for repo in subscription.targets.all())


class RowSerializer(serializers.Serializer):
    """A matrix row: one (name, content key) pair, with a cell for every repo of the group.

    ``context["listed"]`` (``subscriptions.services.ListedCopies``) names the row's subscription.
    """

    id = serializers.CharField()
    name = serializers.CharField()
    content_key = serializers.CharField()
    verifiable = serializers.BooleanField()
    hidden = serializers.BooleanField()
    owned = serializers.BooleanField()
    size = serializers.IntegerField(allow_null=True)
    formats = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    conflict_types = serializers.ListField(child=serializers.IntegerField())
    subscription = serializers.SerializerMethodField()
    cells = serializers.SerializerMethodField()

    @cached_property
    def _cells(self) -> CellSerializer:
        # One serializer for every cell of a listing: a serializer built per cell deep-copies its
        # fields each time, which was most of what a page of 50 rows × 20 repos cost.
        return CellSerializer(many=True)

    @extend_schema_field(RowSubscriptionSerializer(allow_null=True))
    def get_subscription(self, row) -> dict | None:
        listed = self.context.get("listed")
        subscription = listed.subscription_of(row.copies) if listed else None
        return RowSubscriptionSerializer(subscription).data if subscription else None

    def get_cells(self, row) -> list[dict]:
        return self._cells.to_representation(
            [
                {
                    "repo": repo_id,
                    "state": cell.state.value,
                    "progress": cell.progress,
                    "reason": cell.reason,
                    "copies": cell.copies,
                }
                for repo_id, cell in row.cells.items()
            ]
        )

    def to_representation(self, row):
        data = super().to_representation(row)
        data["conflict_types"] = sorted(data["conflict_types"])
        return data


class RowDetailSerializer(RowSerializer):
    """A row with the full record of each copy."""

    images = serializers.SerializerMethodField()

    def get_images(self, row) -> list[dict]:
        return ImageSerializer(self.context["images"], many=True).data


class ConflictSerializer(serializers.Serializer):
    """A conflict group: its type (1 same name/other content, 2 duplicate, 3 same content/other
    names), where (a repo, or across the group's repos), and every image involved."""

    id = serializers.SerializerMethodField()
    kind = serializers.CharField(source="kind.value")
    type = serializers.IntegerField()
    repo = serializers.IntegerField(source="repo_id", allow_null=True)
    subject = serializers.CharField()
    rows = serializers.SerializerMethodField()
    copies = CopySerializer(many=True)
    acknowledged = serializers.BooleanField()

    def get_id(self, conflict) -> str:
        return f"{self.context['group'].pk}-{conflict.key}"

    def get_rows(self, conflict) -> list[str]:
        return [row.id for row in conflict.rows]


class SyncPropertiesSerializer(serializers.Serializer):
    """Which copy's properties the others are made equal to."""

    source_repo = serializers.IntegerField(
        help_text="The repo holding the copy whose properties win."
    )


class RenameSerializer(serializers.Serializer):
    """One copy of a conflict, by its cloud image id (and repo, if two repos share the id), and its
    new name."""

    image = serializers.CharField(max_length=255, help_text="The copy's image id in its cloud.")
    repo = serializers.IntegerField(
        required=False, help_text="The copy's repo, when the image id alone is ambiguous."
    )
    name = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=10_000,
        help_text="The new name (1 to 255 characters, not used in that repo yet).",
    )
