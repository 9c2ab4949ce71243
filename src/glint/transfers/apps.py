from django.apps import AppConfig


class TransfersConfig(AppConfig):
    name = "glint.transfers"
    verbose_name = "Uploads and downloads"

    def ready(self):
        from glint.transfers import runner

        runner.register()
