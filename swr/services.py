"""Writes that cross models or need a transaction.

The API, the admin and the management commands all write through these
functions, so they share one validation path: the model's ``full_clean()``
before the write, and the database constraints as the last guard. A unique
violation raised by the database (two requests racing for one name) becomes
the domain's conflict error here, and nowhere else.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from swr.api.errors import NamespaceExists, NamespaceNotEmpty, RepositoryExists
from swr.choices import Category, PermissionLevel
from swr.models import ApiToken, Namespace, NamespacePermission, Repository, Tenant, User

# Fields set by the service itself, not by whoever calls it.
_NOT_VALIDATED = ("tenant", "namespace", "creator")


def namespace_create(*, name: str, tenant: Tenant, creator: User | None = None) -> Namespace:
    """Create a namespace of ``tenant``; its creator gets the manage permission on it."""
    namespace = Namespace(name=name, tenant=tenant, creator=creator)
    namespace.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            namespace.save(force_insert=True)
            if creator is not None:
                NamespacePermission.objects.create(namespace=namespace, user=creator, level=PermissionLevel.MANAGE)
    except IntegrityError:
        if Namespace.objects.filter(name=name).exists():
            raise NamespaceExists(f"Organization {name!r} already exists.") from None
        raise
    return namespace


def repository_create(
    *,
    namespace: Namespace,
    name: str,
    is_public: bool,
    category: str = Category.OTHER,
    description: str = "",
    creator: User | None = None,
) -> Repository:
    """Create an image repository in ``namespace``."""
    repository = Repository(
        namespace=namespace,
        name=name,
        is_public=is_public,
        category=category,
        description=description,
        creator=creator,
    )
    repository.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            repository.save(force_insert=True)
    except IntegrityError:
        if Repository.objects.filter(namespace=namespace, name=name).exists():
            raise RepositoryExists(
                f"Image repository {name!r} already exists in organization {namespace.name!r}."
            ) from None
        raise
    return repository


def namespace_delete(*, namespace: Namespace) -> None:
    """Delete an empty namespace and its grants; refuse while it holds repositories."""
    try:
        with transaction.atomic():
            namespace.delete()
    except (ProtectedError, IntegrityError):
        # ProtectedError: repositories exist; IntegrityError: one was created while deleting.
        raise NamespaceNotEmpty(
            f"Organization {namespace.name!r} still holds image repositories; delete them first."
        ) from None


def repository_update(
    *, repository: Repository, is_public: bool, category: str | None = None, description: str | None = None
) -> Repository:
    """Change what may change of a repository: visibility, category, description (never the name)."""
    repository.is_public = is_public
    if category is not None:
        repository.category = category
    if description is not None:
        repository.description = description
    repository.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    repository.save(update_fields=["is_public", "category", "description", "updated_at"])
    return repository


def repository_delete(*, repository: Repository) -> None:
    """Delete a repository (its images go with it once the distribution side exists)."""
    repository.delete()


def token_issue(*, user: User, lifetime: timedelta | None = None) -> tuple[ApiToken, str]:
    """Issue an API token for ``user``; the secret is returned once and only its hash is stored."""
    raw = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=ApiToken.hash_key(raw),
        hint=raw[: len(ApiToken.PREFIX) + 6],
        expires_at=timezone.now() + (lifetime or settings.SWR_TOKEN_LIFETIME),
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    """Revoke a token: it stops working at once."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
