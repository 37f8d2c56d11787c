"""What the credential commands share: a tenant and a user, created when missing."""

from django.core.management.base import BaseCommand, CommandError

from swr.models import Tenant, User


class TenantUserCommand(BaseCommand):
    """A command that acts for ``--user`` of ``--tenant``."""

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant (domain) name.")
        parser.add_argument("--user", required=True, help="User name.")
        parser.add_argument("--tenant-admin", action="store_true", help="Make the user an administrator of the tenant.")

    def ensure_user(self, tenant: str, user: str, tenant_admin: bool) -> User:
        """The user of that tenant, both created when missing; a user of another tenant is an error."""
        tenant_obj, created = Tenant.objects.get_or_create(name=tenant)
        if created:
            self.stdout.write(f"Created tenant {tenant_obj.name} (project id {tenant_obj.project_id}).")
        user_obj = User.objects.filter(username=user).first()
        if user_obj is None:
            user_obj = User.objects.create_user(username=user, tenant=tenant_obj, is_tenant_admin=tenant_admin)
            self.stdout.write(f"Created user {user_obj.username} in tenant {tenant_obj.name}.")
        elif user_obj.tenant_id != tenant_obj.pk:
            raise CommandError(f"User {user!r} exists but belongs to tenant {user_obj.tenant or 'none'}.")
        elif tenant_admin and not user_obj.is_tenant_admin:
            user_obj.is_tenant_admin = True
            user_obj.save(update_fields=["is_tenant_admin"])
        return user_obj
