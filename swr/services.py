"""Writes that cross models or need a transaction.

The API, the admin and the management commands all write through these
functions, so they share one validation path: the model's ``full_clean()``
before the write, and the database constraints as the last guard. A unique
violation raised by the database (two requests racing for one name) becomes
the domain's conflict error here, and nowhere else.

Races with deletes. The caller found the namespace or repository before the
service's transaction began; by then another request may have deleted it. So
each write re-finds, under a lock, the row it writes into or removes, and
answers 404 when it is gone, instead of letting a foreign key fail (on
PostgreSQL at commit: Django's foreign keys are DEFERRABLE INITIALLY
DEFERRED) or removing a row that another request already removed. A delete
gives a quota place back only for the row its own DELETE statement removed.

Lock order (PostgreSQL). Every write takes its row locks in this order and
never one higher in the list after one lower, so two writes can wait for
each other in one direction only, and never deadlock:

1. the namespace: ``FOR UPDATE`` by its delete; ``FOR KEY SHARE`` by every
   write into it (repository create, its grants). It cannot go away while
   they run, and they do not wait for each other.
2. the tenant, which holds the quota counters: a create's conditional UPDATE
   takes its place there; a delete locks it (``FOR NO KEY UPDATE``) before it
   removes anything, and gives the place back in the same transaction.
3. the repository: ``FOR UPDATE`` by its delete, ``FOR KEY SHARE`` by its
   grants, its own UPDATE for a change.
4. grant rows (and users, which grants only hold ``FOR KEY SHARE``).

A new row is inserted after the locks above it. Its INSERT can still wait for
a transaction deleting a row of the same name, but that transaction already
holds every lock it needs that ranks above the new row, so the wait ends.

SQLite has no row locks: every transaction takes the database's write lock
when it begins (``IMMEDIATE``, registry/settings.py), so writes run one at a
time, and re-reading the row inside the transaction is all a write needs.
"""

import secrets
from contextlib import nullcontext
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, ProtectedError, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from swr import hotpath, policy, signing
from swr.api.errors import (
    NamespaceExists,
    NamespaceNotEmpty,
    NamespaceNotFound,
    NamespaceQuotaExceeded,
    PermissionExists,
    PermissionNotFound,
    RepositoryExists,
    RepositoryNotFound,
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


def _lock(model: type, pk: int, strength: str) -> bool:
    """Inside a transaction: lock row ``pk`` of ``model`` until the transaction ends; False if it is gone.

    ``strength`` is PostgreSQL's row-lock strength: ``UPDATE`` for a row about to be deleted,
    ``NO KEY UPDATE`` for one about to be updated, ``KEY SHARE`` for one that a row about to be
    written refers to (it cannot be deleted meanwhile; other writers under it go on). Written out
    because Django's ``select_for_update()`` has no ``KEY SHARE``. A row deleted by a transaction
    that committed while this one waited is not found. On SQLite the transaction already holds
    the database's write lock: the row is only read.
    """
    table, pk_column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(model._meta.pk.column)
    lock = f" FOR {strength}" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE {pk_column} = %s{lock}", [pk])
        return cursor.fetchone() is not None


def _namespace_gone(namespace: Namespace) -> NamespaceNotFound:
    return NamespaceNotFound(f"Organization {namespace.name!r} not found.")


def _repository_gone(repository: Repository) -> RepositoryNotFound:
    return RepositoryNotFound(
        f"Image repository {repository.name!r} not found in organization {repository.namespace.name!r}."
    )


def _take_quota(tenant_id: int, key: str, parent: Namespace | None = None) -> bool:
    """Inside the creating transaction: count one more ``key`` for the tenant, or refuse if it is at its quota.

    One conditional UPDATE both checks and takes: it locks the tenant's row, and
    a concurrent create waits for the lock and then re-reads the row, so two
    creates can never both take the last place. If the create fails later in
    the transaction, the rollback gives the place back.

    SQLite only, ``parent``: the row the new one will refer to; no place is taken
    if it is gone, and the answer is False (the transaction holds the database's
    write lock, so it cannot go before the insert). PostgreSQL's creates into a
    parent take their place with :func:`_insert_within_quota`, which locks it.
    """
    count, quota = f"{key}_count", f"{key}_quota"
    limit = Coalesce(F(quota), Value(settings.SWR_DEFAULT_QUOTAS[key]))
    tenant = Tenant.objects.filter(pk=tenant_id, **{f"{count}__lt": limit})
    if parent is not None:
        tenant = tenant.filter(Exists(type(parent).objects.filter(pk=parent.pk)))
    if not tenant.update(**{count: F(count) + 1}):
        if parent is not None and not type(parent).objects.filter(pk=parent.pk).exists():
            return False
        _quota_exceeded(tenant_id, key)
    return True


def _quota_exceeded(tenant_id: int, key: str):
    tenant = Tenant.objects.get(pk=tenant_id)
    error = NamespaceQuotaExceeded if key == "namespace" else RepositoryQuotaExceeded
    noun = "organizations" if key == "namespace" else "image repositories"
    raise error(f"Tenant {tenant.name!r} already owns its quota of {tenant.quota(key)} {noun}.")


@cache
def _within_quota_statement(model: type, key: str, parent: type, audit_model: type | None) -> str:
    """The statement of :func:`_insert_within_quota`, built once per kind of row."""
    table, columns, width = hotpath.insert_target(model)
    count, quota = f"{key}_count", f"{key}_quota"
    quote = connection.ops.quote_name
    tenant_table, parent_table = quote(Tenant._meta.db_table), quote(parent._meta.db_table)
    sql = (
        # The parent is locked before the tenant (the module's lock order): the UPDATE needs its answer.
        f"WITH parent AS (SELECT id FROM {parent_table} WHERE id = %s FOR KEY SHARE), "
        f"place AS (UPDATE {tenant_table} SET {count} = {count} + 1 "
        f"WHERE id = %s AND {count} < COALESCE({quota}, %s) AND EXISTS (SELECT FROM parent) RETURNING id), "
        f"created AS (INSERT INTO {table} ({columns}) "
        f"SELECT {', '.join(['%s'] * width)} FROM place RETURNING id)"
    )
    if audit_model is None:
        return sql + " SELECT EXISTS (SELECT FROM parent), (SELECT id FROM created)"
    audit_table, audit_columns, audit_width = hotpath.insert_target(audit_model)
    return sql + (
        f", recorded AS (INSERT INTO {audit_table} ({audit_columns}) "
        f"SELECT {', '.join(['%s'] * audit_width)} FROM created RETURNING id) "
        "SELECT EXISTS (SELECT FROM parent), (SELECT id FROM created), (SELECT id FROM recorded)"
    )


def _insert_within_quota(obj, parent, tenant_id: int, key: str, audit: AuditRecord | None = None) -> bool:
    """PostgreSQL: take the quota place and insert ``obj`` (and its ``audit`` record) in one statement.

    The same guarded UPDATE as :func:`_take_quota`, as a data-modifying CTE that
    the INSERT selects from: no row is inserted unless a place was taken, and a
    unique violation of the INSERT undoes the UPDATE with it. First it locks the
    ``parent`` row that ``obj`` refers to (``FOR KEY SHARE``), and takes no place
    if the parent is gone: False then, and nothing was written. The audit record
    is inserted from the created row, so it exists exactly when the row does.
    One round trip, no explicit transaction: the hot path of creates.
    """
    sql = _within_quota_statement(type(obj), key, type(parent), None if audit is None else type(audit))
    params = [parent.pk, tenant_id, settings.SWR_DEFAULT_QUOTAS[key], *hotpath.insert_values(obj)]
    if audit is not None:
        params += hotpath.insert_values(audit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        parent_found, *ids = cursor.fetchone()
    if not parent_found:
        return False
    if ids[0] is None:
        _quota_exceeded(tenant_id, key)
    hotpath.inserted(obj, ids[0])
    if audit is not None:
        hotpath.inserted(audit, ids[1])
    return True


def _give_back_quota(tenant_id: int, key: str, removed: int) -> None:
    """Inside the deleting transaction, after the tenant's row was locked: count ``removed`` ``key`` less.

    ``removed`` is what this transaction's DELETE statement removed: a row that a concurrent
    request removed first gives nothing back twice.
    """
    if removed:
        count = f"{key}_count"
        Tenant.objects.filter(pk=tenant_id).update(**{count: Greatest(F(count) - removed, Value(0))})


def _delete(model: type, pk: int) -> int:
    """Delete row ``pk`` of ``model`` and what cascades from it; how many ``model`` rows the DELETE removed."""
    return model.objects.filter(pk=pk).delete()[1].get(model._meta.label, 0)


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
    """Create an image repository in ``namespace``; with ``audit``, store that record with it (atomically).

    400 past the tenant's quota, 409 if the name is taken, 404 (NamespaceNotFound) if the namespace
    was deleted since the caller found it: the namespace is locked (``FOR KEY SHARE``) before the
    tenant's quota place is taken, so a racing namespace delete either waits for this create (and
    then answers 406) or deletes first.
    """
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
                if not _insert_within_quota(repository, namespace, namespace.tenant_id, "repository", audit):
                    raise _namespace_gone(namespace)
        else:
            with transaction.atomic():
                if not _take_quota(namespace.tenant_id, "repository", parent=namespace):
                    raise _namespace_gone(namespace)
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
    """Delete an empty namespace and its grants and give its quota place back.

    404 (NamespaceNotFound) if it is gone already, 406 (NamespaceNotEmpty) while it holds
    repositories. Locks the namespace, then the tenant (the module's lock order): a repository
    created in it meanwhile either committed first (406) or finds it gone (404).
    """
    try:
        with transaction.atomic():
            if not _lock(Namespace, namespace.pk, "UPDATE"):
                raise _namespace_gone(namespace)
            _lock(Tenant, namespace.tenant_id, "NO KEY UPDATE")
            _give_back_quota(namespace.tenant_id, "namespace", _delete(Namespace, namespace.pk))
    except ProtectedError:
        raise NamespaceNotEmpty(
            f"Organization {namespace.name!r} still holds image repositories; delete them first."
        ) from None


def repository_update(
    *, repository: Repository, is_public: bool, category: str | None = None, description: str | None = None
) -> Repository:
    """Change what may change of a repository: visibility, category, description (never the name).

    404 (RepositoryNotFound) if it was deleted since the caller found it.
    """
    repository.is_public = is_public
    if category is not None:
        repository.category = category
    if description is not None:
        repository.description = description
    repository.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    changes = {
        "is_public": repository.is_public,
        "category": repository.category,
        "description": repository.description,
        "updated_at": timezone.now(),
    }
    # One UPDATE that says whether the row was still there (save() raises a bare DatabaseError if not).
    if not Repository.objects.filter(pk=repository.pk).update(**changes):
        raise _repository_gone(repository)
    repository.updated_at = changes["updated_at"]
    return repository


def repository_delete(*, repository: Repository) -> None:
    """Delete a repository and its grants and give its quota place back (its images go with it once
    the distribution side exists). 404 (RepositoryNotFound) if it is gone already: of requests
    racing to delete it, one removes it and the others answer 404.

    Locks the tenant, then the repository (the module's lock order), so that a create of the same
    name waits for this delete instead of holding the tenant while this delete waits for it.
    """
    tenant_id = repository.namespace.tenant_id
    with transaction.atomic():
        _lock(Tenant, tenant_id, "NO KEY UPDATE")
        if not _lock(Repository, repository.pk, "UPDATE"):
            raise _repository_gone(repository)
        _give_back_quota(tenant_id, "repository", _delete(Repository, repository.pk))


# Grants. Each call applies all of its entries or none, and answers 404 if ``obj`` is gone. The grants
# a call changes or removes are locked before they are read: of requests racing to remove one, one
# removes it and the others answer 404.


def _grant_target(obj: Namespace | Repository):
    """The grant model of ``obj``, its field and a label; locks ``obj`` against its delete (404 if gone)."""
    if not _lock(type(obj), obj.pk, "KEY SHARE"):
        raise _namespace_gone(obj) if isinstance(obj, Namespace) else _repository_gone(obj)
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
