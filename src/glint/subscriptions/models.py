"""Subscriptions to signed image lists, and the images Glint brought in for them.

A subscription belongs to a group: a list URL, the endorser expected to sign it, the group's repos
that receive its images, and what to do with an image that leaves the list. The last list it
accepted stays in force until a newer valid one comes (``glint.subscriptions.refresh``); a refused
list changes nothing but the subscription's last error.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from glint.accounts.dn import display_from_canonical
from glint.repos.fields import EncryptedTextField
from glint.subscriptions.choices import OnRemoval

__all__ = ["SubscribedImage", "Subscription"]

#: The properties Glint sets on the images of a list, all under one prefix (not ``glint_``: those
#: are Glint's per-copy markers, rewritten for each copy; these travel with the image).
PROPERTY_PREFIX = "imagelist_"


class Subscription(models.Model):
    """One group's subscription to one signed image list.

    Fields:
        group, name: Whose it is; the name is unique in the group.
        url, url_shown: The list's link (encrypted: it may hold a token) and its redacted form.
        token: Optional ``user:password`` sent as basic auth to the list's host (encrypted).
        endorser_dn, endorser_ca: The signer expected (canonical DNs, as for people).
        targets: The group's repos that keep the list's images.
        images: The list identifiers to take (``dc:identifier`` of images); empty: all.
        name_prefix: Put before each image's title to make its name.
        refresh_seconds: How often the list is fetched again.
        on_removal: What happens to Glint's copies of an image that leaves the list or expires.
        conflict_policy: What a target holding the name with other content does (an updated
            image: ``replace`` copies the new one, verifies it, then removes the old).
        enabled: A disabled subscription is not refreshed.
        list_*: The last list accepted (its identifier, title, version, expiry, content digest and
            JSON); empty until one is.
        last_refresh_at, last_refresh_ok, last_error: The last refresh, and why it failed.
        next_refresh_at, refresh_lease_expires: When the next is due; a process refreshing it
            holds it until the lease expires, so replicas refresh a list once.
    """

    group = models.ForeignKey(
        "accounts.Group", on_delete=models.CASCADE, related_name="subscriptions"
    )
    name = models.CharField(_("name"), max_length=100)
    url = EncryptedTextField(_("list URL"))
    url_shown = models.CharField(_("list URL"), max_length=2000)
    token = EncryptedTextField(_("token"), blank=True)
    endorser_dn = models.CharField(_("endorser DN"), max_length=1024)
    endorser_ca = models.CharField(_("endorser's CA DN"), max_length=1024)
    targets = models.ManyToManyField("repos.Repo", related_name="subscriptions")
    images = models.JSONField(_("images taken"), default=list, blank=True)
    name_prefix = models.CharField(_("name prefix"), max_length=100, blank=True)
    refresh_seconds = models.PositiveIntegerField(_("refresh interval (s)"), default=3600)
    on_removal = models.CharField(
        _("when an image leaves the list"),
        max_length=10,
        choices=OnRemoval.choices,
        default=OnRemoval.DELETE,
    )
    conflict_policy = models.CharField(
        _("when a target has the name"), max_length=20, default="replace"
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    list_identifier = models.CharField(max_length=255, blank=True, db_index=True)
    list_title = models.CharField(max_length=500, blank=True)
    list_version = models.CharField(max_length=100, blank=True)
    list_expires = models.DateTimeField(null=True, blank=True)
    list_digest = models.CharField(max_length=64, blank=True)
    list_document = models.JSONField(null=True, blank=True)
    list_accepted_at = models.DateTimeField(null=True, blank=True)

    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_ok = models.BooleanField(null=True)
    last_error = models.TextField(blank=True)
    next_refresh_at = models.DateTimeField(default=timezone.now, db_index=True)
    refresh_lease_expires = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name"],
                name="%(app_label)s_%(class)s_unique_group_name",
                violation_error_message="This group already has a subscription with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def endorser_shown(self) -> str:
        return display_from_canonical(self.endorser_dn)

    @property
    def list_expired(self) -> bool:
        """The list in force has passed its ``dc:date:expires``: its images got ``on_removal``
        and stay so until the publisher signs a newer list."""
        return self.list_expires is not None and self.list_expires <= timezone.now()

    @property
    def token_set(self) -> bool:
        return bool(self.token)


class SubscribedImage(models.Model):
    """An image of a subscription's list that Glint fetched (or is fetching) into its repos.

    One row per (identifier, sha512): an updated image gets a new row. ``upload`` is the web-link
    upload that fetches it once, checks its size and SHA-512 while streaming, and fans it out.
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="fetched_images"
    )
    identifier = models.CharField(max_length=255)
    sha512 = models.CharField(max_length=128)
    name = models.CharField(max_length=255)
    upload = models.ForeignKey(
        "transfers.Upload", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["subscription_id", "identifier", "-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})"
