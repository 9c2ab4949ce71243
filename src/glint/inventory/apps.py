"""Inventory: what each repo holds, polled from the clouds, and people's choices about its rows.

Polling and storage only: the matrix built from it is ``glint.matrix`` (the rules) and
``glint.jobs.matrix`` (reading it all from the database).
"""

from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_save


def _refresh_saved_repo(sender, instance, **kwargs):
    """A repo that was added or edited (new credentials, re-enabled) is polled at once."""
    from glint.inventory.poller import request_refresh

    if instance.enabled:
        transaction.on_commit(lambda: request_refresh([instance.pk]))


class InventoryConfig(AppConfig):
    name = "glint.inventory"
    label = "inventory"
    verbose_name = "Inventory"

    def ready(self):
        post_save.connect(
            _refresh_saved_repo, sender="repos.Repo", dispatch_uid="inventory-refresh-repo"
        )
