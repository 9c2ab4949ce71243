from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "glint.plans"
    label = "plans"
    verbose_name = "Plans"
