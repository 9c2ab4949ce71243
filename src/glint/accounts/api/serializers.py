from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from glint.accounts.choices import Role
from glint.accounts.dn import DNError, canonical_from_string
from glint.accounts.models import AccessRequest, Group, Membership, User


class GroupSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["id", "name", "description", "copies_run_at", "raw_copies_format", "role"]

    def get_role(self, group) -> str | None:
        return self.context["request"].user.role_in(group)


class WhoAmISerializer(serializers.ModelSerializer):
    display_dn = serializers.CharField(read_only=True)
    groups = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "dn", "display_dn", "is_admin", "default_group", "groups"]

    def get_groups(self, user) -> list[dict]:
        return [
            {"id": m.group_id, "name": m.group.name, "role": m.role}
            for m in user.memberships.select_related("group")
        ]


class DNField(serializers.CharField):
    """A DN in any accepted form, returned canonical; an ambiguous or too long DN is a 400.

    Its length is checked on the canonical form, by ``glint.accounts.dn`` (``MAX_DN_LENGTH``), the
    same limit as for every other way a DN enters Glint.
    """

    def to_internal_value(self, data):
        try:
            return canonical_from_string(super().to_internal_value(data))
        except (DNError, DjangoValidationError) as exc:
            raise serializers.ValidationError(str(exc)) from None


class UserSerializer(serializers.ModelSerializer):
    dn = DNField(help_text="The person's certificate subject, slash or RFC 4514 form.")
    display_dn = serializers.CharField(read_only=True)
    groups = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "dn", "display_dn", "is_admin", "is_active", "created", "groups"]
        read_only_fields = ["created"]

    def get_groups(self, user) -> list[dict]:
        return [
            {"id": m.group_id, "name": m.group.name, "role": m.role} for m in user.memberships.all()
        ]


class UserUpdateSerializer(serializers.Serializer):
    """What an admin may change about another person; the DN is their certificate's and stays."""

    is_admin = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)


class GroupWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name", "description", "copies_run_at", "raw_copies_format"]


class MembershipSerializer(serializers.ModelSerializer):
    dn = DNField(source="user.dn", help_text="The person, by DN; added to Glint if new.")
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.none())
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    class Meta:
        model = Membership
        fields = ["id", "group", "dn", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = getattr(self.context.get("request"), "user", None)
        if user is not None and user.is_authenticated:
            self.fields["group"].queryset = user.visible_groups()


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class AccessRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessRequest
        fields = ["id", "dn", "issuer_dn", "first_seen", "last_seen"]


class ApproveSerializer(serializers.Serializer):
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all())
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)
