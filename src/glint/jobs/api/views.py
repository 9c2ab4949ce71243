"""``/api/v1/jobs/``: the jobs of the caller's groups, with ``cancel/`` and ``retry/`` actions.

Members of a group see its jobs and may cancel and retry them (whoever asked for them); another
group's job is a 404. Cancel and retry answer 202: the work happens in a worker, and the job's
URL tells how it went.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from glint.accounts.access import visible_group
from glint.drf.permissions import IsAdmin, IsRegisteredUser
from glint.jobs import services, states
from glint.jobs.api.serializers import JobSerializer, WorkerStatusSerializer
from glint.jobs.filtersets import JobFilterSet
from glint.jobs.models import Job

LIST_PARAMETERS = [
    OpenApiParameter("group", int, description="Only this group's jobs."),
    OpenApiParameter(
        "state", str, enum=list(states.JOB_STATES), description="Only jobs in this state."
    ),
    OpenApiParameter("kind", str, enum=list(states.KINDS)),
    OpenApiParameter(
        "requester", str, description="A user id, or text the requester's DN contains."
    ),
    OpenApiParameter("repo", int, description="Jobs that read from or write to this repo."),
]


def _refused(exc: services.JobRefused) -> Response:
    code = status.HTTP_409_CONFLICT if exc.code == "state" else status.HTTP_400_BAD_REQUEST
    return Response({"detail": exc.message}, status=code)


@extend_schema_view(list=extend_schema(parameters=LIST_PARAMETERS))
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Copies, deletes and property syncs: state, per-target progress, timings and errors."""

    queryset = Job.objects.none()  # for the schema; get_queryset picks the caller's jobs
    serializer_class = JobSerializer

    def get_queryset(self):
        params = self.request.query_params
        jobs = Job.objects.visible_to(self.request.user).prefetch_related("targets")
        if params.get("group"):
            jobs = jobs.filter(group=visible_group(self.request.user, params["group"]))
        filters = JobFilterSet(params, queryset=jobs)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return filters.qs

    def _act(self, request, act):
        job = self.get_object()
        try:
            job = act(job, request.user)
        except services.JobRefused as exc:
            return _refused(exc)
        return Response(
            JobSerializer(Job.objects.prefetch_related("targets").get(pk=job.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the job (a running copy within about a second) and delete what it left half-made.

        Any member of the job's group may cancel it. 409 if the job has already ended.
        """
        return self._act(request, services.cancel)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Run a partial, failed or cancelled job again: only the targets that are not done.

        Any member of the job's group may retry it. 409 if the job is still live or all done.
        """
        return self._act(request, services.retry)


class WorkerViewSet(viewsets.ViewSet):
    """The cluster (admins): every job runner, its last heartbeat and the jobs it runs."""

    permission_classes = [IsRegisteredUser, IsAdmin]

    @extend_schema(responses=WorkerStatusSerializer(many=True))
    def list(self, request):
        return Response(WorkerStatusSerializer(services.workers_with_jobs(), many=True).data)
