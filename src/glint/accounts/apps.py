from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "glint.accounts"
    label = "accounts"
    verbose_name = "Accounts"
