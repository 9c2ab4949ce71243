"""``/api/v1/repos/``: the repos of the caller's groups; managers and admins change them."""

from collections.abc import Mapping

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from glint.accounts.access import require_manager, visible_group
from glint.repos import services
from glint.repos.api.serializers import (
    ImportResponseSerializer,
    RepoImportSerializer,
    RepoSerializer,
    ValidationResultSerializer,
)
from glint.repos.models import Repo


def _posted_group(request):
    """The body's ``group``; None when the body is not an object (its serializer says why: 400)."""
    return request.data.get("group") if isinstance(request.data, Mapping) else None


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("group", int, description="Only this group's repos.")]
    )
)
class RepoViewSet(viewsets.ModelViewSet):
    """Cloud projects of groups. Adding or changing one checks it against the cloud first."""

    queryset = Repo.objects.none()  # for the schema; get_queryset picks the caller's repos
    serializer_class = RepoSerializer

    def get_queryset(self):
        repos = services.visible_repos(self.request.user)
        if self.request.query_params.get("group"):
            repos = repos.filter(
                group=visible_group(self.request.user, self.request.query_params["group"])
            )
        return repos

    def create(self, request, *args, **kwargs):
        # Permission first: a member must not make Glint contact a cloud on their behalf.
        if _posted_group(request) not in (None, ""):
            require_manager(request.user, visible_group(request.user, _posted_group(request)))
        return super().create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        require_manager(request.user, self.get_object().group)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        require_manager(self.request.user, instance.group)
        services.delete_repo(instance)

    @extend_schema(request=None, responses=ValidationResultSerializer)
    @action(detail=True, methods=["post"])
    def validate(self, request, pk=None):
        """Check the stored settings against the cloud: sign in and reach the image service."""
        repo = self.get_object()
        require_manager(request.user, repo.group)
        try:
            project = services.validate_repo(repo)
        except services.RepoValidationError as exc:
            return Response(
                {"ok": False, "code": exc.code, "field": exc.field, "detail": exc.message}
            )
        return Response(
            {"ok": True, "project_id": project.project_id, "project_name": project.project_name}
        )

    @extend_schema(request=RepoImportSerializer, responses=ImportResponseSerializer)
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def import_clouds_yaml(self, request):
        """Add the clouds of a clouds.yaml to a group; each is checked first and reported on."""
        group = visible_group(request.user, _posted_group(request))
        require_manager(request.user, group)
        params = RepoImportSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        ca_bundle = params.validated_data.get("ca_bundle")
        try:
            results = services.import_clouds_yaml(
                params.validated_data["clouds_yaml"],
                group,
                names=params.validated_data.get("clouds", ()),
                read_ca=(lambda path: ca_bundle) if ca_bundle else services.refuse_ca_path,
                site=params.validated_data["site"],
            )
        except services.RepoValidationError as exc:
            return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportResponseSerializer({"results": results}).data)
