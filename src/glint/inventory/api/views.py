"""``/api/v1/images/`` (matrix rows), ``/api/v1/conflicts/`` and the refresh actions.

Rows and conflicts are computed from the inventory, so these are plain viewsets over
``glint.inventory.services``. Their ids start with the group id, which is checked like any other
group-scoped object: another group's row is a 404.
"""

import dataclasses

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts.access import current_group, visible_group
from glint.api.pagination import Pagination
from glint.inventory import services
from glint.inventory.api.serializers import (
    ConflictSerializer,
    RefreshSerializer,
    RenameSerializer,
    RepoStatusSerializer,
    RowDetailSerializer,
    RowSerializer,
    SyncPropertiesSerializer,
)
from glint.inventory.matrix import SORT_KEYS, sort_rows
from glint.inventory.models import Image
from glint.inventory.poller import request_refresh
from glint.jobs.api.serializers import JobSerializer
from glint.jobs.models import Job
from glint.plans import jobs_bridge
from glint.plans import services as plans
from glint.plans.api.views import PlanRefused
from glint.repos.models import Repo

GROUP_PARAM = OpenApiParameter("group", int, description="The group; the caller's default group if absent.")


def _group(request):
    group = current_group(request)
    if group is None:
        raise ValidationError({"group": "You belong to no group yet."})
    return group


def _parse_hidden(value: str | None) -> bool | None:
    if value in (None, "", "all"):
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValidationError({"hidden": "Use true, false or all."})


class ImageRowViewSet(viewsets.ViewSet):
    """Matrix rows: one per (name, content), with a cell for each of the group's repos."""

    lookup_value_regex = r"[0-9]+-[0-9a-f]{16}"

    @extend_schema(
        parameters=[
            GROUP_PARAM,
            OpenApiParameter("q", str, description="Only rows whose name contains this text."),
            OpenApiParameter("hidden", str, enum=["true", "false", "all"], description="Hidden rows, shown rows, or both (default)."),
            OpenApiParameter("sort", str, enum=sorted(SORT_KEYS) + [f"-{k}" for k in sorted(SORT_KEYS)]),
        ],
        responses=RowSerializer(many=True),
    )
    def list(self, request):
        matrix = jobs_bridge.matrix_with_jobs(_group(request))
        hidden = _parse_hidden(request.query_params.get("hidden"))
        needle = request.query_params.get("q", "").lower()
        rows = [r for r in matrix.rows if (hidden is None or r.hidden == hidden) and needle in r.name.lower()]
        rows = sort_rows(rows, request.query_params.get("sort", "name"))
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        response = paginator.get_paginated_response(RowSerializer(page, many=True).data)
        response.data["group"] = matrix.group.pk
        response.data["inventory_version"] = matrix.version
        response.data["repos"] = RepoStatusSerializer(matrix.repos, many=True).data
        return response

    @extend_schema(responses=RowDetailSerializer)
    def retrieve(self, request, pk=None):
        _matrix, row = services.find_row(request.user, pk)
        images = Image.objects.filter(pk__in=[c.pk for c in row.copies]).order_by("repo_id", "image_id")
        return Response(RowDetailSerializer(row, context={"images": images}).data)

    def _set_hidden(self, request, pk, hidden: bool):
        matrix, row = services.find_row(request.user, pk)
        services.set_hidden(matrix.group, row, hidden, request.user)
        return Response(RowSerializer(dataclasses.replace(row, hidden=hidden)).data)

    @extend_schema(request=None, responses=RowSerializer)
    @action(detail=True, methods=["post"])
    def hide(self, request, pk=None):
        """List the row under "Hidden images": never changed by a matrix apply, never a copy source."""
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
        matrix, row = services.find_row(request.user, pk)
        data = SyncPropertiesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job_ids = plans.sync_row_properties(matrix.group, row, data.validated_data["source_repo"], request.user)
        except plans.PlanError as exc:
            raise PlanRefused(exc) from None
        job = Job.objects.prefetch_related("targets").get(pk=job_ids[0])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ConflictViewSet(viewsets.ViewSet):
    """Conflict groups of a group's images (ARCHITECTURE.md "Conflicts")."""

    lookup_value_regex = r"[0-9]+-[a-z_]+-(?:[0-9]+|all)-[0-9a-f]{16}"

    @extend_schema(parameters=[GROUP_PARAM], responses=ConflictSerializer(many=True))
    def list(self, request):
        matrix = services.group_matrix(_group(request))
        return Response(ConflictSerializer(matrix.conflicts, many=True, context={"group": matrix.group}).data)

    def _conflict(self, request, pk):
        return services.find_conflict(request.user, pk)

    @extend_schema(responses=ConflictSerializer)
    def retrieve(self, request, pk=None):
        matrix, conflict = self._conflict(request, pk)
        return Response(ConflictSerializer(conflict, context={"group": matrix.group}).data)

    @extend_schema(request=None, responses=ConflictSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Accept the conflict as it is; it is reported again if its images change."""
        matrix, conflict = self._conflict(request, pk)
        services.acknowledge(matrix.group, conflict, request.user)
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
        copies = [c for c in conflict.copies
                  if c.image_id == wanted["image"] and wanted.get("repo") in (None, c.repo_id)]
        if len(copies) != 1:
            raise ValidationError({"image": "No copy of this conflict has that image id." if not copies else
                                   "Two repos hold that image id: name the repo too."})
        try:
            image = plans.rename_copy(matrix.group, conflict, copies[0].pk, wanted["name"], request.user)
        except plans.PlanError as exc:
            raise PlanRefused(exc) from None
        return Response({"image": image.image_id, "repo": image.repo_id, "name": wanted["name"].strip()})


class GroupRefreshView(APIView):
    """Poll every enabled repo of a group now (asynchronously)."""

    @extend_schema(request=None, responses={202: RefreshSerializer})
    def post(self, request, pk):
        group = visible_group(request.user, pk)
        ids = [repo.pk for repo in services.group_repos(group)]
        request_refresh(ids)
        return Response({"requested": ids}, status=status.HTTP_202_ACCEPTED)


class RepoRefreshView(APIView):
    """Poll one repo now (asynchronously)."""

    @extend_schema(request=None, responses={202: RefreshSerializer})
    def post(self, request, pk):
        repo = Repo.objects.filter(pk=pk, group__in=request.user.visible_groups()).first()
        if repo is None:
            raise Http404("No such repo.")
        request_refresh([repo.pk])
        return Response({"requested": [repo.pk]}, status=status.HTTP_202_ACCEPTED)
