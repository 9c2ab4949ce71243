from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "glint.api"
    label = "api"
    verbose_name = "REST API"
