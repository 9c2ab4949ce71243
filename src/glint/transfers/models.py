"""Uploads: a brand-new image coming into Glint, from a person's file or from a web link.

An :class:`Upload` owns the *incoming* leg (browser/CLI → Glint, or web link → Glint): what the
person declared, how many bytes arrived, their sha256. The fan-out to the target repos is an
ordinary ``jobs.Job`` of kind ``upload`` (one ``JobTarget`` per repo), created when the bytes
start to flow, so the jobs page, cancel, retry, the lease and the matrix cells work as for any
copy. Its first pass runs while the bytes arrive and lands them in the content cache; a target
that fails is retried by the job runner from the cache (``glint.transfers.upload_job``).

Incoming states::

    waiting ──PUT / fetch──▶ receiving ──▶ received    (all bytes in the cache, sha256 known)
                              ▲    │
                     PATCH    │    ├──────▶ pulled      (a web link the target clouds fetched
                   (resume)   │    │                     themselves; Glint read only its head)
                              │    ├──────▶ failed | cancelled
                              │    ▼
                            interrupted                 (a file upload whose connection broke,
                                                         or whose server died: the bytes that
                                                         arrived wait in the cache's upload part)

An interrupted upload is resumed from ``bytes_received`` (``glint.transfers.services.receive``);
one not resumed within ``GLINT_UPLOAD_RESUME_HOURS`` fails and its part is removed
(``glint.transfers.repair``).

A web link with credentials is stored encrypted (``source_url``); only the redacted form
(``url_shown``) is ever shown, logged or returned.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from glint.repos.fields import EncryptedTextField

__all__ = ["Upload"]


class UploadState(models.TextChoices):
    WAITING = "waiting", _("waiting for data")
    RECEIVING = "receiving", _("receiving")
    INTERRUPTED = "interrupted", _("interrupted: resume it")
    RECEIVED = "received", _("received")
    PULLED = "pulled", _("fetched by the target clouds")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


class Upload(models.Model):
    """One image being uploaded to some of a group's repos.

    Fields:
        group, requester, requester_dn: Whose upload (members of the group see it).
        name, disk_format, container_format, min_disk, min_ram, visibility, properties: What the
            image is created with; an empty ``disk_format`` is detected from the bytes.
        conflict_policy: What a target that already has the name with other content does
            (``glint.replication.ConflictPolicy``).
        targets: The repos to upload to.
        source_url, url_shown: The web link (encrypted) and its redacted form; empty for a file.
        expected_algo, expected_digest: A checksum the bytes must match (sha256 or sha512).
        checksum_url, checksum_entry: Where that checksum is found (a SHA256SUMS-style file).
        size: Bytes announced (Content-Length) or, once received, the bytes that arrived.
        bytes_received: Progress of the incoming leg; for a file upload, the bytes safe on disk
            in its part file (a resume continues from here).
        interrupted_at: When it last became ``interrupted`` (its resume window starts then).
        sha256: Of the bytes received; the key of the copy in the content cache.
        state, error_code, error: The incoming leg's state and why it failed.
        job: The fan-out job (created when the bytes start to flow).
    """

    group = models.ForeignKey("accounts.Group", on_delete=models.CASCADE, related_name="uploads")
    requester = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    requester_dn = models.CharField(_("requested by"), max_length=1024, blank=True)
    name = models.CharField(_("name"), max_length=255)
    disk_format = models.CharField(_("disk format"), max_length=20, blank=True)
    container_format = models.CharField(_("container format"), max_length=20, default="bare")
    min_disk = models.PositiveIntegerField(_("min disk (GB)"), default=0)
    min_ram = models.PositiveIntegerField(_("min RAM (MB)"), default=0)
    visibility = models.CharField(_("visibility"), max_length=16, default="private")
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    conflict_policy = models.CharField(
        _("when a target has the name"), max_length=20, default="report"
    )
    targets = models.ManyToManyField("repos.Repo", related_name="uploads")
    source_url = EncryptedTextField(_("web link"), blank=True)
    url_shown = models.CharField(_("web link"), max_length=2000, blank=True)
    expected_algo = models.CharField(max_length=10, blank=True)
    expected_digest = models.CharField(max_length=128, blank=True)
    checksum_url = EncryptedTextField(_("checksum file"), blank=True)
    checksum_entry = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    bytes_received = models.BigIntegerField(_("bytes received"), default=0)
    interrupted_at = models.DateTimeField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        _("state"), max_length=20, choices=UploadState.choices, default=UploadState.WAITING
    )
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="upload"
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"upload {self.pk} {self.name} ({self.state})"

    @property
    def from_url(self) -> bool:
        return bool(self.url_shown)

    @property
    def part_key(self) -> str:
        """The name of its part file in the content cache (``ContentCache.upload_part``)."""
        return str(self.pk)
