"""Accounts API: whoami, groups, people, memberships, access requests.

Rights are checked in ``glint.accounts.services`` (the same calls the pages make), which also
writes the audit records; these views only translate HTTP to those calls.
"""

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from glint.accounts import services
from glint.accounts.api.serializers import (
    AccessRequestSerializer,
    ApproveSerializer,
    GroupSerializer,
    GroupWriteSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    UserSerializer,
    UserUpdateSerializer,
    WhoAmISerializer,
)
from glint.accounts.models import AccessRequest, Group, Membership, User
from glint.drf.permissions import IsAdmin, IsRegisteredUser


def _account_error(exc: services.AccountError):
    return ValidationError({"detail": str(exc)})


class GroupViewSet(viewsets.ModelViewSet):
    """The groups the caller belongs to (all groups for admins); admins add, rename and delete
    them."""

    serializer_class = GroupSerializer
    queryset = Group.objects.none()  # typed path parameters for the schema; real rows below
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return self.request.user.visible_groups()

    def get_serializer_class(self):
        return GroupSerializer if self.action in ("list", "retrieve") else GroupWriteSerializer

    def perform_create(self, serializer):
        try:
            serializer.instance = services.create_group(
                self.request.user, **serializer.validated_data
            )
        except services.AccountError as exc:
            raise _account_error(exc) from None

    def perform_update(self, serializer):
        group = serializer.instance
        data = {
            "name": group.name,
            "description": group.description,
            "copies_run_at": group.copies_run_at,
            "raw_copies_format": group.raw_copies_format,
            **serializer.validated_data,
        }
        try:
            services.update_group(self.request.user, group, **data)
        except services.AccountError as exc:
            raise _account_error(exc) from None

    def perform_destroy(self, instance):
        services.delete_group(self.request.user, instance)


class UserViewSet(viewsets.ModelViewSet):
    """People (admins only). The DN is fixed once added; the admin flag is never one's own to
    change."""

    serializer_class = UserSerializer
    queryset = User.objects.none()
    permission_classes = [IsRegisteredUser, IsAdmin]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return User.objects.prefetch_related("memberships__group")

    @extend_schema(request=UserUpdateSerializer, responses=UserSerializer)
    def partial_update(self, request, *args, **kwargs):
        person = self.get_object()
        changes = UserUpdateSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        services.update_user(request.user, person, **changes.validated_data)
        return Response(UserSerializer(person).data)

    def perform_create(self, serializer):
        try:
            serializer.instance = services.create_user(
                self.request.user, serializer.validated_data["dn"]
            )
        except services.AccountError as exc:
            raise _account_error(exc) from None

    def perform_destroy(self, instance):
        services.delete_user(self.request.user, instance)


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Who is in which group. Managers of a group (and admins) add people, set roles and remove
    them."""

    serializer_class = MembershipSerializer
    queryset = Membership.objects.none()

    def get_queryset(self):
        memberships = Membership.objects.filter(
            group__in=self.request.user.visible_groups()
        ).select_related("user", "group")
        group = self.request.query_params.get("group")
        if group:
            memberships = memberships.filter(
                Q(group__pk=group) if group.isdigit() else Q(group__name=group)
            )
        return memberships

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.add_member_by_dn(
                self.request.user, data["group"], data["user"]["dn"], data["role"]
            )
        except services.AccountError as exc:
            raise _account_error(exc) from None

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipSerializer)
    @action(detail=True, methods=["post"])
    def role(self, request, pk=None):
        """Set this member's role (manager or member)."""
        membership = self.get_object()
        body = MembershipRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.set_membership(
            request.user, membership.group, membership.user, body.validated_data["role"]
        )
        return Response(MembershipSerializer(membership, context={"request": request}).data)

    def perform_destroy(self, instance):
        services.remove_membership(self.request.user, instance)


class AccessRequestViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Valid certificates waiting to be added (admins). DELETE dismisses one; ``approve/`` adds
    it."""

    serializer_class = AccessRequestSerializer
    queryset = AccessRequest.objects.all()
    permission_classes = [IsRegisteredUser, IsAdmin]

    @extend_schema(request=ApproveSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Register this DN and put them in a group with a role."""
        access_request = self.get_object()
        body = ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = services.approve_request(
            request.user, access_request, body.validated_data["group"], body.validated_data["role"]
        )
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.dismiss_request(self.request.user, instance)


class WhoAmIView(APIView):
    """The caller's identity, admin flag and group roles."""

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request):
        return Response(WhoAmISerializer(request.user).data)
