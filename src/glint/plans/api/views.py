"""``/api/v1/plans/``: POST a set of cell changes → a plan; POST ``{id}/apply/`` → the jobs.

Any member or manager of the group may plan and apply; another group's plan or group is a 404.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from glint.accounts.access import visible_group
from glint.plans import services
from glint.plans.api.serializers import ApplySerializer, PlanRequestSerializer, PlanSerializer
from glint.plans.models import Plan
from glint.plans.planner import Change


class PlanRefused(APIException):
    """A plan that cannot be made or applied (already applied, too old, bad version)."""

    def __init__(self, error: services.PlanError):
        super().__init__(error.message)
        self.status_code = error.status


class PlanViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Plans of matrix changes, each decided against a fresh inventory, each applied at most once."""

    serializer_class = PlanSerializer
    queryset = Plan.objects.none()  # for the schema; get_queryset scopes it to the caller's groups
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        plans = Plan.objects.filter(group__in=self.request.user.visible_groups()).prefetch_related(
            "items__source").select_related("created_by")
        if self.action == "list" and self.request.query_params.get("group"):
            plans = plans.filter(group=visible_group(self.request.user, self.request.query_params["group"]))
        return plans

    @extend_schema(parameters=[OpenApiParameter("group", int, description="Only this group's plans.")])
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
            plan = services.create_plan(group, request.user, changes, data.validated_data["inventory_version"],
                                        force=data.validated_data["force"])
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
