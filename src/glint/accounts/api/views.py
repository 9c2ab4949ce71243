from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts.api.serializers import GroupSerializer, WhoAmISerializer
from glint.accounts.models import Group


class GroupViewSet(viewsets.ReadOnlyModelViewSet):
    """The groups the caller belongs to (all groups for admins)."""

    serializer_class = GroupSerializer
    queryset = Group.objects.none()  # typed path parameters for the schema; real rows below

    def get_queryset(self):
        return self.request.user.visible_groups()


class WhoAmIView(APIView):
    """The caller's identity, admin flag and group roles."""

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request):
        return Response(WhoAmISerializer(request.user).data)
