"""What the credential commands share: a tenant and a user, created when missing, and a password if asked."""

import getpass
import sys

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from swr.models import Tenant, User


class TenantUserCommand(BaseCommand):
    """A command that acts for ``--user`` of ``--tenant``.

    Nothing is printed before the command has succeeded: ``note()`` keeps what was created, and
    ``write_notes()`` prints it once the transaction has committed, so a refused command prints
    only its error (and exits non-zero) and leaves nothing behind.
    """

    stealth_options = ("stdin",)  # call_command(..., stdin=...) in the tests, as Django's createsuperuser

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant (domain) name.")
        parser.add_argument(
            "--user",
            required=True,
            help="User name. User names are global: one name is one user, of one tenant, across all tenants.",
        )
        parser.add_argument("--tenant-admin", action="store_true", help="Make the user an administrator of the tenant.")
        parser.add_argument(
            "--password",
            action="store_true",
            help="Set the user's password, for password logins (POST /v3/auth/tokens): asked twice, "
            "not echoed, at a terminal; otherwise read from the first line of standard input.",
        )

    def execute(self, *args, **options):
        self.stdin = options.get("stdin", sys.stdin)
        self.notes: list[str] = []
        return super().execute(*args, **options)

    def note(self, line: str) -> None:
        self.notes.append(line)

    def write_notes(self) -> None:
        for line in self.notes:
            self.stdout.write(line)

    def read_password(self, user: str) -> str:
        """The new password of ``user``, from the terminal (asked twice, not echoed) or from standard input.

        Read before any transaction starts: on SQLite a write transaction would hold the database's
        write lock while a person types.
        """
        if self.stdin.isatty():
            password = getpass.getpass(f"Password for {user}: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The two passwords differ. Nothing was changed.")
        else:
            password = self.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandError("The password is empty. Nothing was changed.")
        return password

    def ensure_user(self, tenant: str, user: str, tenant_admin: bool, password: str | None = None) -> User:
        """The user of that tenant, both created when missing; with ``password``, it is set.

        User names are global across tenants: a name already taken in another tenant is refused
        before anything is created.
        """
        user_obj = User.objects.select_related("tenant").filter(username=user).first()
        if user_obj is not None and (user_obj.tenant is None or user_obj.tenant.name != tenant):
            raise CommandError(
                f"User {user!r} already exists and belongs to tenant {user_obj.tenant or '(none)'}: user names "
                f"are global across tenants, so a user of tenant {tenant!r} needs another name. Nothing was created."
            )
        if user_obj is None:
            tenant_obj = Tenant.objects.filter(name=tenant).first()
            if tenant_obj is None:
                tenant_obj = Tenant(name=tenant)
                self._clean(tenant_obj, exclude=["namespace_quota", "repository_quota"])
                tenant_obj.save()
                self.note(f"Created tenant {tenant_obj.name} (project id {tenant_obj.project_id}).")
            user_obj = User(username=user, tenant=tenant_obj, is_tenant_admin=tenant_admin)
            user_obj.set_unusable_password()
            self._clean(user_obj, exclude=["password"])
            user_obj.save()
            self.note(f"Created user {user_obj.username} in tenant {tenant_obj.name}.")
        elif tenant_admin and not user_obj.is_tenant_admin:
            user_obj.is_tenant_admin = True
            user_obj.save(update_fields=["is_tenant_admin"])
            self.note(f"{user_obj.username} is now an administrator of tenant {user_obj.tenant.name}.")
        if password is not None:
            try:
                password_validation.validate_password(password, user_obj)
            except ValidationError as exc:
                raise CommandError("The password was refused: " + " ".join(exc.messages)) from None
            user_obj.set_password(password)
            user_obj.save(update_fields=["password"])
            self.note(
                f"Password set: {user_obj.username} can log in with POST /v3/auth/tokens "
                f"(user name {user_obj.username!r}, domain name {user_obj.tenant.name!r})."
            )
        return user_obj

    @staticmethod
    def _clean(obj, *, exclude: list[str]) -> None:
        try:
            obj.full_clean(exclude=exclude)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
