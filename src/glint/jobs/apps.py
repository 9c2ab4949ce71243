from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "glint.jobs"
    label = "jobs"
    verbose_name = "Jobs"
