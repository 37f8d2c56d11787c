"""Writes that cross models or need a transaction.

The API, the admin and the management commands all write through these
functions, so they share one validation path: the model's ``full_clean()``
before the write, and the database constraints as the last guard. A unique
violation raised by the database (two requests racing for one name) becomes
the domain's conflict error here, and nowhere else.
"""

import secrets
from contextlib import nullcontext
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, ProtectedError, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from swr import hotpath, policy, signing
from swr.api.errors import (
    NamespaceExists,
    NamespaceNotEmpty,
    NamespaceQuotaExceeded,
    PermissionExists,
    PermissionNotFound,
    RepositoryExists,
    RepositoryQuotaExceeded,
)
from swr.choices import Category, PermissionLevel
from swr.models import (
    AccessKey,
    ApiToken,
    AuditRecord,
    Namespace,
    NamespacePermission,
    Repository,
    RepositoryPermission,
    Tenant,
    User,
)

# Fields that whoever calls a service does not set: the relations the service sets itself, and a
# repository's usage counters, which start at zero and change only with what the registry stores
# (their CHECK constraints still guard them).
_NOT_VALIDATED = ("tenant", "namespace", "creator", "num_images", "num_download", "size")


def _take_quota(tenant_id: int, key: str) -> None:
    """Inside the creating transaction: count one more ``key`` for the tenant, or refuse if it is at its quota.

    One conditional UPDATE both checks and takes: it locks the tenant's row, and
    a concurrent create waits for the lock and then re-reads the row, so two
    creates can never both take the last place. If the create fails later in
    the transaction, the rollback gives the place back.
    """
    count, quota = f"{key}_count", f"{key}_quota"
    limit = Coalesce(F(quota), Value(settings.SWR_DEFAULT_QUOTAS[key]))
    if not Tenant.objects.filter(pk=tenant_id, **{f"{count}__lt": limit}).update(**{count: F(count) + 1}):
        _quota_exceeded(tenant_id, key)


def _quota_exceeded(tenant_id: int, key: str):
    tenant = Tenant.objects.get(pk=tenant_id)
    error = NamespaceQuotaExceeded if key == "namespace" else RepositoryQuotaExceeded
    noun = "organizations" if key == "namespace" else "image repositories"
    raise error(f"Tenant {tenant.name!r} already owns its quota of {tenant.quota(key)} {noun}.")


@cache
def _within_quota_statement(model: type, key: str, audit_model: type | None) -> str:
    """The statement of :func:`_insert_within_quota`, built once per kind of row."""
    table, columns, width = hotpath.insert_target(model)
    count, quota = f"{key}_count", f"{key}_quota"
    tenant_table = connection.ops.quote_name(Tenant._meta.db_table)
    sql = (
        f"WITH place AS (UPDATE {tenant_table} SET {count} = {count} + 1 "
        f"WHERE id = %s AND {count} < COALESCE({quota}, %s) RETURNING id), "
        f"created AS (INSERT INTO {table} ({columns}) "
        f"SELECT {', '.join(['%s'] * width)} FROM place RETURNING id)"
    )
    if audit_model is None:
        return sql + " SELECT id FROM created"
    audit_table, audit_columns, audit_width = hotpath.insert_target(audit_model)
    return sql + (
        f", recorded AS (INSERT INTO {audit_table} ({audit_columns}) "
        f"SELECT {', '.join(['%s'] * audit_width)} FROM created RETURNING id) "
        "SELECT created.id, (SELECT id FROM recorded) FROM created"
    )


def _insert_within_quota(obj, tenant_id: int, key: str, audit: AuditRecord | None = None) -> None:
    """PostgreSQL: take the quota place and insert ``obj`` (and its ``audit`` record) in one statement.

    The same guarded UPDATE as :func:`_take_quota`, as a data-modifying CTE that
    the INSERT selects from: no row is inserted unless a place was taken, and a
    unique violation of the INSERT undoes the UPDATE with it. The audit record
    is inserted from the created row, so it exists exactly when the row does.
    One round trip, no explicit transaction: the hot path of creates.
    """
    sql = _within_quota_statement(type(obj), key, None if audit is None else type(audit))
    params = [tenant_id, settings.SWR_DEFAULT_QUOTAS[key], *hotpath.insert_values(obj)]
    if audit is not None:
        params += hotpath.insert_values(audit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        _quota_exceeded(tenant_id, key)
    hotpath.inserted(obj, row[0])
    if audit is not None:
        hotpath.inserted(audit, row[1])


def _give_back_quota(tenant_id: int, key: str) -> None:
    """Inside the deleting transaction: count one ``key`` less for the tenant (never below zero)."""
    count = f"{key}_count"
    Tenant.objects.filter(pk=tenant_id).update(**{count: Greatest(F(count) - 1, Value(0))})


def usage_recount(*, tenant: Tenant | None = None) -> None:
    """Set the usage counters from what each tenant owns (after rows were written outside the services)."""
    tenants = Tenant.objects.all() if tenant is None else Tenant.objects.filter(pk=tenant.pk)
    namespaces = Namespace.objects.filter(tenant=OuterRef("pk")).order_by().values("tenant")
    repositories = Repository.objects.filter(namespace__tenant=OuterRef("pk")).order_by().values("namespace__tenant")
    tenants.update(
        namespace_count=Coalesce(Subquery(namespaces.annotate(n=Count("id")).values("n")), Value(0)),
        repository_count=Coalesce(Subquery(repositories.annotate(n=Count("id")).values("n")), Value(0)),
    )


def quota_usage(tenant: Tenant) -> dict[str, int]:
    """How many namespaces and repositories the tenant owns."""
    return {"namespace": tenant.namespace_count, "repository": tenant.repository_count}


def namespace_create(*, name: str, tenant: Tenant, creator: User | None = None) -> Namespace:
    """Create a namespace of ``tenant`` within its quota; its creator gets the manage permission on it."""
    namespace = Namespace(name=name, tenant=tenant, creator=creator)
    namespace.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            _take_quota(tenant.pk, "namespace")
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
    audit: AuditRecord | None = None,
) -> Repository:
    """Create an image repository in ``namespace``; with ``audit``, store that record with it (atomically)."""
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
        if connection.vendor == "postgresql":
            # Inside a caller's transaction, a savepoint keeps it usable after a unique violation.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                _insert_within_quota(repository, namespace.tenant_id, "repository", audit)
        else:
            with transaction.atomic():
                _take_quota(namespace.tenant_id, "repository")
                repository.save(force_insert=True)
                if audit is not None:
                    hotpath.insert(audit)
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
            _give_back_quota(namespace.tenant_id, "namespace")
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


@transaction.atomic
def repository_delete(*, repository: Repository) -> None:
    """Delete a repository (its images go with it once the distribution side exists)."""
    repository.delete()
    _give_back_quota(repository.namespace.tenant_id, "repository")


# Grants. Each call applies all of its entries or none.


def _grant_target(obj: Namespace | Repository):
    if isinstance(obj, Namespace):
        return NamespacePermission, "namespace", obj.name
    return RepositoryPermission, "repository", obj.name


def _within_level(by: User | None, obj: Namespace | Repository, changes: list) -> None:
    """Refuse what reaches above the level of ``by`` on ``obj`` (:func:`swr.policy.require_grants`).

    ``by`` None: staff in the admin and the management commands, who are not bound by a grant.
    """
    if by is not None:
        namespace, repository = (obj, None) if isinstance(obj, Namespace) else (obj.namespace, obj)
        policy.require_grants(by, namespace, repository, changes)


@transaction.atomic
def grants_create(*, obj: Namespace | Repository, levels: dict[User, int], by: User | None = None) -> None:
    """Grant each user their level on ``obj``; 409 if any of them already has a grant there.

    ``by``: who grants; 403 for a level above their own on ``obj`` (spec section 6).
    """
    model, field, label = _grant_target(obj)
    _within_level(by, obj, [(user, None, level) for user, level in levels.items()])
    existing = model.objects.filter(**{field: obj}, user__in=levels).select_related("user").first()
    if existing is not None:
        raise PermissionExists(f"User {existing.user.username!r} already has a permission on {label!r}.")
    try:
        with transaction.atomic():
            model.objects.bulk_create(model(**{field: obj}, user=user, level=level) for user, level in levels.items())
    except IntegrityError:
        raise PermissionExists(f"A permission on {label!r} was granted at the same time; read it and retry.") from None


@transaction.atomic
def grants_update(*, obj: Namespace | Repository, levels: dict[User, int], by: User | None = None) -> None:
    """Change each user's level on ``obj``; 404 if any of them has no grant there.

    ``by``: who changes them; 403 for a level above their own on ``obj``, or a grant above it (spec section 6).
    """
    model, field, label = _grant_target(obj)
    grants = {g.user_id: g for g in model.objects.select_for_update().filter(**{field: obj}, user__in=levels)}
    held = {user: grants[user.pk].level if user.pk in grants else None for user in levels}
    _within_level(by, obj, [(user, held[user], level) for user, level in levels.items()])
    for user, level in levels.items():
        if user.pk not in grants:
            raise PermissionNotFound(f"User {user.username!r} has no permission on {label!r} to change.")
        grants[user.pk].level = level
    for grant in grants.values():
        grant.save(update_fields=["level", "updated_at"])


@transaction.atomic
def grants_delete(*, obj: Namespace | Repository, users: list[User], by: User | None = None) -> None:
    """Remove the users' grants on ``obj``; 404 if any of them has none there.

    ``by``: who removes them; 403 for a grant above their own level on ``obj`` (spec section 6).
    """
    model, field, label = _grant_target(obj)
    grants = model.objects.filter(**{field: obj}, user__in=users)
    held = dict(grants.select_for_update().values_list("user_id", "level"))
    _within_level(by, obj, [(user, held[user.pk], None) for user in users if user.pk in held])
    for user in users:
        if user.pk not in held:
            raise PermissionNotFound(f"User {user.username!r} has no permission on {label!r} to delete.")
    grants.delete()


def access_key_issue(*, user: User, description: str = "") -> tuple[AccessKey, str]:
    """Issue an AK/SK pair for ``user``; the secret key is returned once and stored encrypted."""
    access_key, secret_key = signing.new_key_pair()
    key = AccessKey.objects.create(
        user=user, access_key=access_key, secret_encrypted=signing.encrypt_secret(secret_key), description=description
    )
    return key, secret_key


def _printable(text: str, limit: int) -> str:
    """Text as it can be stored and read: unprintable characters (NUL among them) escaped."""
    if text.isprintable():
        return text[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)[:limit]


def audit_entry(
    *,
    source: str,
    action: str,
    obj: str,
    success: bool,
    user: User | None = None,
    status_code: int | None = None,
    detail: str = "",
    request_id: str = "",
) -> AuditRecord:
    """The record of one change, or one attempt at a change, not stored yet.

    :func:`audit_record` stores it on its own; a service that takes ``audit=``
    stores it together with the change it describes.
    """
    return AuditRecord(
        source=source,
        action=action,
        object=_printable(obj, 512),
        outcome=AuditRecord.Outcome.SUCCESS if success else AuditRecord.Outcome.FAILURE,
        user=user,
        username=user.username if user else "",
        tenant_id=user.tenant_id if user else None,
        status_code=status_code,
        detail=_printable(detail, 512),
        request_id=request_id,
    )


def audit_record(**entry) -> AuditRecord:
    """Record one change, or one attempt at a change (the arguments of :func:`audit_entry`)."""
    return hotpath.insert(audit_entry(**entry))


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
