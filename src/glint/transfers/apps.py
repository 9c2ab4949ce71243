from django.apps import AppConfig


class TransfersConfig(AppConfig):
    name = "glint.transfers"
    verbose_name = "Uploads and downloads"
