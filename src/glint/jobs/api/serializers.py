"""Job serializers: what a job and its targets look like in ``/api/v1/jobs/`` (never a secret)."""

from rest_framework import serializers

from glint.jobs.models import Job, JobTarget

__all__ = ["JobSerializer", "JobTargetSerializer", "WorkerStatusSerializer"]


class JobTargetSerializer(serializers.ModelSerializer):
    progress = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Percent of bytes done."
    )

    class Meta:
        model = JobTarget
        fields = [
            "id",
            "repo",
            "repo_name",
            "state",
            "outcome",
            "image_id",
            "bytes_done",
            "bytes_total",
            "progress",
            "rate",
            "attempts",
            "next_attempt_at",
            "error_code",
            "error",
            "warnings",
            "started",
            "finished",
            "ran_by",
        ]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester_dn", read_only=True)
    targets = JobTargetSerializer(many=True, read_only=True)
    cancel_requested = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "group",
            "requester",
            "state",
            "image_name",
            "content_key",
            "sha256",
            "source_repo",
            "source_image_id",
            "site",
            "options",
            "attempts",
            "error_code",
            "error",
            "created",
            "started",
            "finished",
            "next_attempt_at",
            "cancel_requested",
            "targets",
        ]
        read_only_fields = fields

    def get_cancel_requested(self, job) -> bool:
        return job.cancel_requested is not None


class WorkerStatusSerializer(serializers.Serializer):
    """A job runner: its name, kind, host and process, heartbeats, and the ids of its jobs."""

    name = serializers.CharField(source="worker.name")
    kind = serializers.CharField(source="worker.kind")
    host = serializers.CharField(source="worker.host")
    pid = serializers.IntegerField(source="worker.pid")
    sites = serializers.ListField(
        child=serializers.CharField(),
        source="worker.sites",
        help_text="The sites whose jobs it takes besides those of no site (a Celery worker).",
    )
    started = serializers.DateTimeField(source="worker.started")
    last_seen = serializers.DateTimeField(source="worker.last_seen")
    alive = serializers.BooleanField(help_text="Heard of within the last three heartbeats.")
    running_jobs = serializers.SerializerMethodField()

    def get_running_jobs(self, status) -> list[int]:
        return [job.pk for job in status.running]
