from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "glint.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        from glint.inventory.signals import inventory_changed
        from glint.jobs.matrix import warm_after_poll

        inventory_changed.connect(warm_after_poll, dispatch_uid="jobs-matrix-warm-after-poll")
