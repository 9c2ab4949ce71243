from rest_framework import serializers

from glint.accounts.models import Group, User


class GroupSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["id", "name", "description", "role"]

    def get_role(self, group) -> str | None:
        return self.context["request"].user.role_in(group)


class WhoAmISerializer(serializers.ModelSerializer):
    display_dn = serializers.CharField(read_only=True)
    groups = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "dn", "display_dn", "is_admin", "default_group", "groups"]

    def get_groups(self, user) -> list[dict]:
        return [{"id": m.group_id, "name": m.group.name, "role": m.role} for m in user.memberships.select_related("group")]
