"""Repo API serializers. Secrets are write-only: reads say only whether one is set (Pulp's
pattern); on update, blank or absent keeps the stored one and ``null`` removes an optional one
(``CLEARABLE_SECRETS``)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from glint.accounts.models import Group
from glint.repos import services
from glint.repos.models import CLEARABLE_SECRETS, KIND_FIELDS, SECRET_FIELDS, Repo
from glint.validators import validate_site_name


def _secret_field(clearable: bool = False) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        allow_null=clearable,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. Empty or absent on update keeps the stored value"
        + ("; null removes it." if clearable else "."),
    )


class RepoListSerializer(serializers.ListSerializer):
    """Works out "shared with other groups" for a whole page in one query."""

    def to_representation(self, data):
        repos = list(data.all() if hasattr(data, "all") else data)
        self._context["shared"] = services.shared_with(repos, self.context["request"].user)
        return super().to_representation(repos)


class RepoSerializer(serializers.ModelSerializer):
    group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all())
    password = _secret_field()
    application_credential_secret = _secret_field()
    secret_access_key = _secret_field()
    session_token = _secret_field(clearable=True)
    password_set = serializers.BooleanField(read_only=True)
    application_credential_secret_set = serializers.BooleanField(read_only=True)
    secret_access_key_set = serializers.BooleanField(read_only=True)
    session_token_set = serializers.BooleanField(read_only=True)
    shared_with = serializers.SerializerMethodField(
        help_text=(
            "Other groups using the same cloud project; groups you are not in appear as "
            '"another group".'
        )
    )

    class Meta:
        model = Repo
        list_serializer_class = RepoListSerializer
        fields = [
            "id", "group", "name", "site", "kind", "auth_url", "region", "interface", "auth_type",
            "username", "password", "password_set",
            "application_credential_id", "application_credential_secret",
            "application_credential_secret_set",
            "project_name", "project_id", "project_domain_name", "project_domain_id",
            "user_domain_name", "user_domain_id", "ca_bundle",
            "access_key_id", "secret_access_key", "secret_access_key_set",
            "session_token", "session_token_set", "role_arn", "endpoint_url",
            "enabled", "shared_with",
            "last_poll_at", "last_poll_ok", "last_poll_error", "last_poll_duration",
            "created", "updated",
        ]  # fmt: skip
        read_only_fields = [
            "last_poll_at",
            "last_poll_ok",
            "last_poll_error",
            "last_poll_duration",
            "created",
            "updated",
        ]
        validators = []  # (group, name) uniqueness is checked by the model, with its own message

    def get_fields(self):
        fields = super().get_fields()
        if (
            self.instance is not None
            and not isinstance(self.instance, (list, tuple))
            and hasattr(self.instance, "pk")
        ):
            fields["group"].read_only = True  # a repo stays in its group
            fields["kind"].read_only = True  # and its kind: the connection record is per kind
        return fields

    def to_representation(self, repo):
        """Only the fields of the repo's own kind (``KIND_FIELDS``), with their ``*_set`` flags."""
        data = super().to_representation(repo)
        for kind, names in KIND_FIELDS.items():
            for name in names if kind != repo.kind else ():
                data.pop(name, None)
                data.pop(f"{name}_set", None)
        return data

    def get_shared_with(self, repo) -> list[str]:
        shared = self.context.get("shared")
        if shared is None:
            shared = services.shared_with([repo], self.context["request"].user)
        return shared.get(repo.pk, [])

    def _save(self, repo: Repo, attrs: dict) -> Repo:
        cleared = []
        for name, value in attrs.items():
            if name in CLEARABLE_SECRETS and value is None:
                if getattr(repo, name):
                    cleared.append(name)
                setattr(repo, name, "")
            elif name in SECRET_FIELDS and not value:
                continue  # keep the stored secret
            else:
                setattr(repo, name, value)
        try:
            services.save_repo(repo, cleared=cleared)
        except services.RepoValidationError as exc:
            raise serializers.ValidationError(exc.as_dict(), code=exc.code) from None
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None
        return repo

    def create(self, validated_data):
        return self._save(Repo(), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class ValidationResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    project_id = serializers.CharField(required=False)
    project_name = serializers.CharField(required=False, allow_null=True)
    code = serializers.CharField(
        required=False, help_text="The cloud error's stable code, when not ok."
    )
    field = serializers.CharField(
        required=False, allow_null=True, help_text="The setting to correct, if known."
    )
    detail = serializers.CharField(required=False, help_text="Why the repo does not work.")


class RepoImportSerializer(serializers.Serializer):
    """A clouds.yaml to import, as an uploaded ``file`` or as ``clouds_yaml`` text."""

    group = serializers.IntegerField()
    file = serializers.FileField(required=False)
    clouds_yaml = serializers.CharField(required=False, trim_whitespace=False)
    clouds = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Only these clouds."
    )
    ca_bundle = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="PEM used for every cloud whose entry names a cacert.",
    )
    site = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        validators=[validate_site_name],
        help_text="The site of every imported repo.",
    )

    def validate(self, attrs):
        upload = attrs.pop("file", None)
        if upload is not None:
            try:
                attrs["clouds_yaml"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise serializers.ValidationError(
                    {"file": ["The clouds.yaml must be UTF-8 text."]}
                ) from None
        if not attrs.get("clouds_yaml"):
            raise serializers.ValidationError(
                {"file": ["Send a clouds.yaml as 'file' (upload) or 'clouds_yaml' (text)."]}
            )
        return attrs


class ImportResultSerializer(serializers.Serializer):
    cloud = serializers.CharField()
    status = serializers.ChoiceField(choices=["added", "skipped", "failed"])
    reason = serializers.CharField(allow_blank=True)
    repo = serializers.SerializerMethodField()

    def get_repo(self, result) -> int | None:
        return result.repo.pk if result.repo else None


class ImportResponseSerializer(serializers.Serializer):
    results = ImportResultSerializer(many=True)
