from django.apps import AppConfig


class SwrConfig(AppConfig):
    name = "swr"
    verbose_name = "Software repository"

    def ready(self):
        from swr import checks  # noqa: F401 (registers the system checks)
