"""Print a fresh AK/SK pair for a user, creating the tenant and the user when missing."""

from django.db import transaction

from swr import services
from swr.audit import Actor
from swr.management.commands._base import TenantUserCommand


class Command(TenantUserCommand):
    help = (
        "Issue an AK/SK pair (SDK-HMAC-SHA256 signatures) for USER of TENANT, creating both when missing. "
        "User names are global across tenants. The last line is 'AK SK'; the secret key is not shown again."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--description", default="", help="What the key is for.")

    def handle(self, *args, tenant, user, tenant_admin, description, password, **options):
        secret = self.read_password(user) if password else None
        with transaction.atomic():
            user_obj = self.ensure_user(tenant, user, tenant_admin, secret)
            key, secret_key = services.access_key_issue(user=user_obj, description=description, actor=Actor.command())
        self.write_notes()
        self.stdout.write(
            f"Access key for {user_obj.username} (user id {user_obj.pk}, for grants) of tenant {user_obj.tenant.name} "
            f"(project id {user_obj.tenant.project_id}). AK and SK:"
        )
        self.stdout.write(f"{key.access_key} {secret_key}")
