from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def _create_cache_table(using: str, **kwargs) -> None:
    """`migrate` also makes the table of the database cache (settings.CACHES), so no setup step is forgotten."""
    call_command("createcachetable", database=using, verbosity=0)


class SwrConfig(AppConfig):
    name = "swr"
    verbose_name = "Software repository"

    def ready(self):
        post_migrate.connect(_create_cache_table, sender=self)
