from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "glint.inventory"
    label = "inventory"
    verbose_name = "Inventory"
