from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SwrConfig(AppConfig):
    name = "swr"
    verbose_name = "Software repository"

    def ready(self):
        from swr import checks  # noqa: F401 (registers the system checks)
        from swr.tasks import ensure_gc_schedule

        # After django_q's tables exist: post_migrate is sent once per app, so listen for django_q's.
        post_migrate.connect(ensure_gc_schedule, sender=self.apps.get_app_config("django_q"), dispatch_uid="swr-gc")
