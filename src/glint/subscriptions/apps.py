from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "glint.subscriptions"
    verbose_name = "Subscriptions to signed image lists"
