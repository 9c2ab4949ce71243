"""Inventory: what each repo holds, polled from the clouds, and the image matrix built from it."""
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
        post_save.connect(_refresh_saved_repo, sender="repos.Repo", dispatch_uid="inventory-refresh-repo")
