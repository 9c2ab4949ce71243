"""``/api/v1/groups/<id>/refresh/`` and ``/api/v1/repos/<id>/refresh/``: ask for polls now.

The matrix's rows and conflicts (``/api/v1/images/``, ``/api/v1/conflicts/``) are served by
``glint.plans.api.views``, beside the plans made from them.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts.access import visible_group
from glint.inventory import services
from glint.inventory.api.serializers import RefreshSerializer
from glint.inventory.poller import request_refresh
from glint.repos.models import Repo


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
