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
from django.utils import timezone

from swr.api.errors import NamespaceExists, RepositoryExists
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
