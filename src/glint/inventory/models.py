"""What each repo holds, as last polled, plus the group's own choices about the matrix rows.

``Image`` rows are written only by the poller (``glint.inventory.poller``), as a diff against the
previous poll. ``HiddenRow`` and ``ConflictAcknowledgement`` are people's choices; they are keyed
by the row's identity (name + content key, see ``glint.matrix.rows``), never by a cloud's
image id, so they survive the image vanishing from one poll, a cloud outage, or a re-upload.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from glint.matrix.rows import Copy

__all__ = ["ConflictAcknowledgement", "HiddenRow", "Image", "ProjectPollLease", "RepoInventory"]

#: The properties that record where a copy came from (``docs/architecture.md``, "Provenance").
GLINT_SHA256 = "glint_sha256"
SDK_SHA256 = "owner_specified.openstack.sha256"
GLINT_SOURCE_REPO = "glint_source_repo"
GLINT_SOURCE_ID = "glint_source_id"
GLINT_MADE_FROM = "glint_made_from"


class Image(models.Model):
    """One image as one repo's project sees it (``docs/architecture.md``, "Listing").

    Fields:
        image_id: The cloud's id; unique per repo only, never an identity across repos.
        checksum: The cloud's md5. os_hash_algo, os_hash_value: its stronger hash.
        glint_sha256, sdk_sha256: sha256 claimed by provenance properties (Glint's own, and the
            one openstacksdk uploads set), copied out of ``properties`` for the matrix.
        glint_source_repo, glint_source_id: Where Glint copied this image from.
        glint_made_from: ``sha256:<hex>`` of the bytes Glint converted this copy from (the
            content its matrix row stands for), when the property holds that form; else empty.
        fingerprint: Digest of the cloud's record; the poll rewrites only rows whose changed.
        first_seen, last_seen: Polls that first and last listed the image.
    """

    repo = models.ForeignKey("repos.Repo", on_delete=models.CASCADE, related_name="images")
    image_id = models.CharField(_("image id"), max_length=255)
    name = models.CharField(_("name"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=30)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    virtual_size = models.BigIntegerField(_("virtual size"), null=True, blank=True)
    disk_format = models.CharField(_("disk format"), max_length=30, blank=True)
    container_format = models.CharField(_("container format"), max_length=30, blank=True)
    checksum = models.CharField(_("md5 checksum"), max_length=64, blank=True)
    os_hash_algo = models.CharField(_("hash algorithm"), max_length=32, blank=True)
    os_hash_value = models.CharField(_("hash value"), max_length=256, blank=True)
    owner = models.CharField(_("owner project"), max_length=255, blank=True)
    visibility = models.CharField(_("visibility"), max_length=16, blank=True)
    protected = models.BooleanField(_("protected"), default=False)
    os_hidden = models.BooleanField(_("hidden in Glance"), default=False)
    member_status = models.CharField(_("member status"), max_length=16, blank=True)
    min_disk = models.PositiveIntegerField(_("min disk (GB)"), default=0)
    min_ram = models.PositiveIntegerField(_("min RAM (MB)"), default=0)
    properties = models.JSONField(_("properties"), default=dict)
    tags = models.JSONField(_("tags"), default=list)
    created_at = models.DateTimeField(_("created in the cloud"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated in the cloud"), null=True, blank=True)
    glint_sha256 = models.CharField(max_length=64, blank=True)
    sdk_sha256 = models.CharField(max_length=64, blank=True)
    glint_source_repo = models.CharField(max_length=255, blank=True)
    glint_source_id = models.CharField(max_length=255, blank=True)
    glint_made_from = models.CharField(max_length=71, blank=True)
    fingerprint = models.CharField(max_length=64)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))

    #: The columns ``as_copy`` needs, for ``values_list`` on large inventories.
    COPY_FIELDS = (
        "pk",
        "repo_id",
        "image_id",
        "name",
        "status",
        "size",
        "disk_format",
        "container_format",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "glint_sha256",
        "sdk_sha256",
        "owner",
        "visibility",
        "member_status",
        "created_at",
        "updated_at",
        "glint_made_from",
        "glint_source_repo",
        "glint_source_id",
    )

    class Meta:
        ordering = ["repo_id", "name", "image_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repo", "image_id"],
                name="%(app_label)s_%(class)s_unique_repo_image",
                violation_error_message="This repo already lists an image with this id.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or '(no name)'} ({self.image_id})"

    def as_copy(self) -> Copy:
        return Copy(*(getattr(self, f) for f in self.COPY_FIELDS))


class RepoInventory(models.Model):
    """The poller's bookkeeping for one repo; its ``version`` goes up whenever the images change.

    A page sends the versions it showed with a change, so the planner can tell that a cell moved
    since (``docs/architecture.md``: "Apply sends only the cells the person changed, with the
    inventory version the page showed").

    Fields:
        project_id: The project the repo's credentials reach, as the cloud confirmed it; decides
            which copies are the repo's own.
        fingerprint: Digest of the whole last listing; an identical listing skips the diff.
        failures: Consecutive failed polls (drives the back-off); reset by a success.
        errors_total, polls_total: Counters for ``/metrics``.
        next_poll_at: When the interval or the back-off lets the repo be polled again.
        refresh_requested_at: A person or a job asked for a poll now; cleared when it ran.
        listed_from: When the poll whose listing is stored began: what was in the cloud by then
            is in the listing (a job's result, for instance).
        poll_lease_owner, poll_lease_expires: The process polling the repo now, taken while
            it holds the repo's project (:class:`ProjectPollLease`) and the repo is still due.
    """

    repo = models.OneToOneField(
        "repos.Repo", on_delete=models.CASCADE, primary_key=True, related_name="inventory"
    )
    project_id = models.CharField(max_length=255, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, blank=True)
    failures = models.PositiveIntegerField(default=0)
    errors_total = models.PositiveBigIntegerField(default=0)
    polls_total = models.PositiveBigIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    listed_from = models.DateTimeField(null=True, blank=True)
    poll_lease_owner = models.CharField(max_length=200, blank=True)
    poll_lease_expires = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"inventory of repo {self.repo_id} v{self.version}"


class ProjectPollLease(models.Model):
    """Who polls one cloud project now, across every Glint process on the database.

    Repos of several groups (or of one) can reach the same project; one listing serves them all,
    so the lease is the project's, not a repo's: two processes that each see a different due repo
    of the project would otherwise both list it (``listings.claim_project_poll``).

    Fields:
        cloud_project: ``Repo.cloud_project`` (where the cloud is + ``#`` + the project), or
            ``repo <id>`` for a repo whose project is not confirmed yet.
        owner, expires: The process holding it and until when; released when its poll is recorded,
            and a dead holder's runs out.
    """

    cloud_project = models.CharField(max_length=700, primary_key=True)
    owner = models.CharField(max_length=200, blank=True)
    expires = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"poll lease of {self.cloud_project}"


class HiddenRow(models.Model):
    """A group's Hide/Show choice for one matrix row (Glint's flag, unrelated to ``os_hidden``).

    Only choices are stored: a row nobody chose for is hidden when no copy is owned by the group's
    projects (``glint.matrix.rows.build_rows``).
    """

    group = models.ForeignKey(
        "accounts.Group", on_delete=models.CASCADE, related_name="hidden_rows"
    )
    name = models.CharField(max_length=255, blank=True)
    content_key = models.CharField(max_length=300)
    hidden = models.BooleanField()
    changed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name", "content_key"],
                name="%(app_label)s_%(class)s_unique_group_row",
                violation_error_message="This row already has a Hide/Show choice.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.content_key}: {'hidden' if self.hidden else 'shown'}"


class ConflictAcknowledgement(models.Model):
    """Someone looked at a conflict group and accepted it as it was.

    Holds only while the group's members are the same (``signature``); a copy joining or leaving
    brings the conflict back.
    """

    group = models.ForeignKey(
        "accounts.Group", on_delete=models.CASCADE, related_name="acknowledged_conflicts"
    )
    key = models.CharField(max_length=100)
    signature = models.CharField(max_length=64)
    acknowledged_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "key"],
                name="%(app_label)s_%(class)s_unique_group_key",
                violation_error_message="This conflict is already acknowledged.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} acknowledged"
