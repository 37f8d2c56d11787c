"""Print a fresh API token for a user, creating the tenant and the user when missing."""

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from swr import services
from swr.audit import Actor
from swr.errors import NamespaceExists
from swr.management.commands._base import TenantUserCommand
from swr.models import Namespace


class Command(TenantUserCommand):
    help = (
        "Issue an API token (X-Auth-Token) for USER of TENANT, creating both when missing; with --password, "
        "also set the user's password for POST /v3/auth/tokens. User names are global across tenants. "
        "The token is printed alone on the last line; the line before it gives the tenant's project id."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--namespace",
            help="Also make sure this organization exists, created by the user when it is missing.",
        )

    def handle(self, *args, tenant, user, tenant_admin, namespace, password, **options):
        secret = self.read_password(user) if password else None
        with transaction.atomic():
            user_obj = self.ensure_user(tenant, user, tenant_admin, secret)
            if namespace:
                self._ensure_namespace(namespace, user_obj.tenant, user_obj)
            token, raw = services.token_issue(user=user_obj, actor=Actor.command())
        self.write_notes()
        tenant_obj = user_obj.tenant
        self.stdout.write(
            f"Token for {user_obj.username} (user id {user_obj.pk}, for grants) of tenant {tenant_obj.name} "
            f"(project id {tenant_obj.project_id}), "
            f"valid until {token.expires_at:%Y-%m-%d %H:%M} UTC:"
        )
        self.stdout.write(raw)

    def _ensure_namespace(self, name, tenant, user):
        existing = Namespace.objects.filter(name=name).first()
        if existing is not None and existing.tenant_id != tenant.pk:
            raise CommandError(f"Organization {name!r} exists and belongs to another tenant. Nothing was created.")
        if existing is None:
            try:
                services.namespace_create(name=name, tenant=tenant, creator=user, actor=Actor.command())
            except NamespaceExists:
                pass
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            else:
                self.note(f"Created organization {name}.")
