from django.apps import AppConfig


class ReposConfig(AppConfig):
    name = "glint.repos"
    label = "repos"
    verbose_name = "Repos"
