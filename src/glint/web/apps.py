from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "glint.web"
    label = "web"
    verbose_name = "Web interface"
