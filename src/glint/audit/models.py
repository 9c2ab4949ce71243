"""The audit trail: one write-once row per state-changing action, refused and failed ones included.

Rows are never changed or deleted through Glint: ``save()`` refuses to update, ``delete()`` refuses,
and so do the queryset's ``update()`` and ``delete()``. The one exception is Django itself setting
``user`` to NULL when a person is deleted; ``user_dn`` keeps who it was. Groups and repos are kept
as plain ids plus a copy of their name, so deleting them changes no audit row.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["AuditRecord", "Outcome", "WriteOnceError"]


class WriteOnceError(Exception):
    """Someone tried to change or delete an audit record."""


class Outcome(models.TextChoices):
    OK = "ok", _("ok")
    REFUSED = "refused", _("refused")  # not allowed: a role check, CSRF, a rule
    FAILED = "failed", _("failed")  # allowed, but it did not work (a cloud said no, bad input)


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        # Collector's SET_NULL on user deletion comes through here; nothing else may.
        if kwargs.keys() == {"user"} and kwargs["user"] is None:
            return super().update(**kwargs)
        raise WriteOnceError("audit records cannot be changed")

    def delete(self):
        raise WriteOnceError("audit records cannot be deleted")


class AuditRecord(models.Model):
    """Who did what, to which group/repo/image, when, with what outcome, in which request."""

    created = models.DateTimeField(_("when"), auto_now_add=True, db_index=True, editable=False)
    request_id = models.CharField(_("request id"), max_length=64, blank=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    user_dn = models.CharField(_("DN"), max_length=1024, blank=True, editable=False)
    action = models.CharField(_("action"), max_length=64, db_index=True, editable=False)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, editable=False)
    group_ref = models.BigIntegerField(
        _("group id"), null=True, blank=True, db_index=True, editable=False
    )
    group_name = models.CharField(_("group"), max_length=100, blank=True, editable=False)
    repo_ref = models.BigIntegerField(_("repo id"), null=True, blank=True, editable=False)
    repo_name = models.CharField(_("repo"), max_length=200, blank=True, editable=False)
    image = models.CharField(_("image"), max_length=512, blank=True, editable=False)
    details = models.JSONField(_("details"), default=dict, blank=True, editable=False)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return (
            f"{self.created:%Y-%m-%d %H:%M:%S} {self.user_dn or 'system'} "
            f"{self.action} {self.outcome}"
        )

    @property
    def who(self) -> str:
        """The person's common name, for a narrow column (pages show the whole DN as its title)."""
        head, separator, common_name = self.user_dn.rpartition("/CN=")
        return common_name if separator else self.user_dn

    @property
    def filled_details(self) -> dict:
        """The details that have a value: an empty error or URL says nothing on a page."""
        return {
            key: value for key, value in self.details.items() if value not in ("", None, [], {})
        }

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise WriteOnceError("audit records cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise WriteOnceError("audit records cannot be deleted")
