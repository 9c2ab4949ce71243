"""``/api/v1/plans/``: POST a set of cell changes → a plan; POST ``{id}/apply/`` → the jobs.
``/api/v1/images/`` (matrix rows) and ``/api/v1/conflicts/``: the matrix the plans are made on.

Any member or manager of the group may plan and apply; another group's plan or group is a 404.
Rows and conflicts are computed (``glint.jobs.matrix``), so theirs are plain viewsets; their ids
start with the group id, which is checked like any other group-scoped object.
"""

import dataclasses

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from glint.accounts.access import current_group, visible_group
from glint.drf.pagination import Pagination
from glint.inventory import services as inventory
from glint.inventory.api.serializers import RepoStatusSerializer
from glint.inventory.models import Image
from glint.jobs.api.serializers import JobSerializer
from glint.jobs.matrix import find_conflict, find_row, group_matrix
from glint.jobs.models import Job
from glint.matrix.planning import Change
from glint.plans import services
from glint.plans.api.serializers import (
    ApplySerializer,
    ConflictSerializer,
    PlanRequestSerializer,
    PlanSerializer,
    RenameSerializer,
    RowDetailSerializer,
    RowSerializer,
    SyncPropertiesSerializer,
)
from glint.plans.filtersets import ORDERS, RowFilterForm
from glint.plans.models import Plan
from glint.subscriptions.services import listed_copies


class PlanRefused(APIException):
    """A plan that cannot be made or applied (already applied, too old, bad version)."""

    def __init__(self, error: services.PlanError):
        super().__init__(error.message)
        self.status_code = error.status


class PlanViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Plans of matrix changes, each decided against a fresh inventory, each applied at most
    once."""

    serializer_class = PlanSerializer
    queryset = Plan.objects.none()  # for the schema; get_queryset scopes it to the caller's groups
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        plans = (
            Plan.objects.filter(group__in=self.request.user.visible_groups())
            .prefetch_related("items__source")
            .select_related("created_by")
        )
        if self.action == "list" and self.request.query_params.get("group"):
            plans = plans.filter(
                group=visible_group(self.request.user, self.request.query_params["group"])
            )
        return plans

    @extend_schema(
        parameters=[OpenApiParameter("group", int, description="Only this group's plans.")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=PlanRequestSerializer, responses={201: PlanSerializer})
    def create(self, request):
        """Plan the changes: every item comes back planned, noop or refused, with the reason."""
        data = PlanRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = visible_group(request.user, data.validated_data["group"])
        changes = [Change(c["row"], c["repo"], c["action"]) for c in data.validated_data["changes"]]
        try:
            plan = services.create_plan(
                group,
                request.user,
                changes,
                data.validated_data["inventory_version"],
                force=data.validated_data["force"],
            )
        except services.PlanError as exc:
            raise PlanRefused(exc) from None
        return Response(PlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: ApplySerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Start the plan's jobs (once); returns their ids, to follow at ``/api/v1/jobs/{id}/``."""
        plan = self.get_object()
        try:
            job_ids = services.apply_plan(plan, request.user)
        except services.PlanError as exc:
            raise PlanRefused(exc) from None
        return Response({"jobs": job_ids}, status=status.HTTP_202_ACCEPTED)


GROUP_PARAM = OpenApiParameter(
    "group", int, description="The group; the caller's default group if absent."
)


def _group(request):
    group = current_group(request)
    if group is None:
        raise ValidationError({"group": "You belong to no group yet."})
    return group


class ImageRowViewSet(viewsets.ViewSet):
    """Matrix rows: one per (name, content), with a cell for each of the group's repos."""

    lookup_value_regex = r"[0-9]+-[0-9a-f]{16}"

    @extend_schema(
        parameters=[
            GROUP_PARAM,
            OpenApiParameter("q", str, description="Only rows whose name contains this text."),
            OpenApiParameter(
                "hidden",
                str,
                enum=["true", "false", "all"],
                description="Hidden rows, shown rows, or both (default).",
            ),
            OpenApiParameter("sort", str, enum=ORDERS),
        ],
        responses=RowSerializer(many=True),
    )
    def list(self, request):
        matrix = group_matrix(_group(request), with_jobs=True)
        filters = RowFilterForm(request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        rows = filters.rows(matrix.rows)
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        listed = listed_copies(matrix.group)
        response = paginator.get_paginated_response(
            RowSerializer(page, many=True, context={"listed": listed}).data
        )
        response.data["group"] = matrix.group.pk
        response.data["inventory_version"] = matrix.version
        response.data["repos"] = RepoStatusSerializer(matrix.repos, many=True).data
        return response

    @extend_schema(responses=RowDetailSerializer)
    def retrieve(self, request, pk=None):
        matrix, row = find_row(request.user, pk)
        images = Image.objects.filter(pk__in=[c.pk for c in row.copies]).order_by(
            "repo_id", "image_id"
        )
        context = {"images": images, "listed": listed_copies(matrix.group)}
        return Response(RowDetailSerializer(row, context=context).data)

    def _set_hidden(self, request, pk, hidden: bool):
        matrix, row = find_row(request.user, pk)
        inventory.set_hidden(matrix.group, row, hidden, request.user)
        return Response(RowSerializer(dataclasses.replace(row, hidden=hidden)).data)

    @extend_schema(request=None, responses=RowSerializer)
    @action(detail=True, methods=["post"])
    def hide(self, request, pk=None):
        """List the row under "Hidden images": never changed by a matrix apply, never a copy
        source."""
        return self._set_hidden(request, pk, True)

    @extend_schema(request=None, responses=RowSerializer)
    @action(detail=True, methods=["post"])
    def show(self, request, pk=None):
        """Bring the row back into the matrix."""
        return self._set_hidden(request, pk, False)

    @extend_schema(request=SyncPropertiesSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"], url_path="sync-properties")
    def sync_properties(self, request, pk=None):
        """Make the properties of the row's copies equal to those of the copy in ``source_repo``.

        A property-sync job (no bytes are copied); only copies that differ and that the group's
        projects own are changed. Any member of the group may ask. 400 with the reason when there
        is nothing to change.
        """
        matrix, row = find_row(request.user, pk)
        data = SyncPropertiesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job_ids = services.sync_row_properties(
                matrix.group, row, data.validated_data["source_repo"], request.user
            )
        except services.PlanError as exc:
            raise PlanRefused(exc) from None
        job = Job.objects.prefetch_related("targets").get(pk=job_ids[0])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


# The docstring below is the API schema's description of the endpoint: kept word for word.
class ConflictViewSet(viewsets.ViewSet):
    """Conflict groups of a group's images (docs/architecture.md "Conflicts")."""

    lookup_value_regex = r"[0-9]+-[a-z_]+-(?:[0-9]+|all)-[0-9a-f]{16}"

    @extend_schema(parameters=[GROUP_PARAM], responses=ConflictSerializer(many=True))
    def list(self, request):
        matrix = group_matrix(_group(request))
        return Response(
            ConflictSerializer(matrix.conflicts, many=True, context={"group": matrix.group}).data
        )

    def _conflict(self, request, pk):
        return find_conflict(request.user, pk)

    @extend_schema(responses=ConflictSerializer)
    def retrieve(self, request, pk=None):
        matrix, conflict = self._conflict(request, pk)
        return Response(ConflictSerializer(conflict, context={"group": matrix.group}).data)

    @extend_schema(request=None, responses=ConflictSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Accept the conflict as it is; it is reported again if its images change."""
        matrix, conflict = self._conflict(request, pk)
        inventory.acknowledge(matrix.group, conflict, request.user)
        conflict.acknowledged = True
        return Response(ConflictSerializer(conflict, context={"group": matrix.group}).data)

    @extend_schema(request=RenameSerializer, responses=RenameSerializer)
    @action(detail=True, methods=["post"])
    def rename(self, request, pk=None):
        """Rename one copy of the conflict in its cloud; the repo is polled again at once.

        Any member of the group may. 400 with the reason for a name that is empty, longer than
        255 characters or already used in that repo, or a copy of another project.
        """
        matrix, conflict = self._conflict(request, pk)
        data = RenameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data
        copies = [
            c
            for c in conflict.copies
            if c.image_id == wanted["image"] and wanted.get("repo") in (None, c.repo_id)
        ]
        if len(copies) != 1:
            raise ValidationError(
                {
                    "image": "No copy of this conflict has that image id."
                    if not copies
                    else "Two repos hold that image id: name the repo too."
                }
            )
        try:
            image = services.rename_copy(
                matrix.group, conflict, copies[0].pk, wanted["name"], request.user
            )
        except services.PlanError as exc:
            raise PlanRefused(exc) from None
        return Response(
            {"image": image.image_id, "repo": image.repo_id, "name": wanted["name"].strip()}
        )
