"""Recompute each tenant's usage counters (organizations, repositories) from the rows it owns."""

from django.core.management.base import BaseCommand

from swr import services
from swr.models import Tenant


class Command(BaseCommand):
    help = (
        "Set every tenant's usage counters from what it owns. Needed only after rows were written "
        "outside the service (raw SQL, bulk imports); the API and the admin keep them up to date."
    )

    def handle(self, *args, **options):
        services.usage_recount()
        for tenant in Tenant.objects.order_by("name"):
            self.stdout.write(
                f"{tenant.name}: {tenant.namespace_count} organizations, {tenant.repository_count} repositories"
            )
