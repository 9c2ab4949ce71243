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
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts.access import current_group, visible_group
from glint.inventory import services
from glint.inventory.api.serializers import (
    ConflictSerializer,
    RefreshSerializer,
    RepoStatusSerializer,
    RowDetailSerializer,
    RowSerializer,
)
from glint.inventory.matrix import SORT_KEYS, sort_rows
from glint.inventory.models import Image
from glint.inventory.poller import request_refresh
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
        matrix = services.group_matrix(_group(request))
        hidden = _parse_hidden(request.query_params.get("hidden"))
        needle = request.query_params.get("q", "").lower()
        rows = [r for r in matrix.rows if (hidden is None or r.hidden == hidden) and needle in r.name.lower()]
        rows = sort_rows(rows, request.query_params.get("sort", "name"))
        paginator = LimitOffsetPagination()
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
