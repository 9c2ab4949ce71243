from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "glint.audit"
    label = "audit"
    verbose_name = "Audit"
