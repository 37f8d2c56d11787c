"""Every write of the domain's rows: one function per operation, the same code on SQLite and PostgreSQL.

The API, the admin and the management commands all write through these
functions, so they share one validation path: the model's ``full_clean()``
before the write, and the database constraints as the last guard. A unique
violation raised by the database (two requests racing for one name) becomes
the domain's conflict error here, and nowhere else. Each takes the ``actor``
(swr/audit.py) and records its change in its own transaction: the record
exists exactly when the change does. Errors are swr/errors.py's.

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
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, ProtectedError, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from swr import policy, signing
from swr.audit import Actor, record
from swr.choices import Category, PermissionLevel
from swr.errors import (
    NamespaceExists,
    NamespaceNotEmpty,
    NamespaceNotFound,
    NamespaceQuotaExceeded,
    PermissionExists,
    PermissionNotFound,
    RepositoryExists,
    RepositoryNotFound,
    RepositoryQuotaExceeded,
    ShareExists,
    ShareNotFound,
    SwrError,
)
from swr.models import (
    AccessKey,
    ApiToken,
    Namespace,
    NamespacePermission,
    Repository,
    RepositoryPermission,
    RepositoryShare,
    TemporaryLogin,
    Tenant,
    User,
)
from swr.sql import Table

# Fields that whoever calls a service does not set: the relations the service sets itself, and a
# repository's usage counters, which start at zero and change only with what the registry stores
# (their CHECK constraints still guard them).
_NOT_VALIDATED = ("tenant", "namespace", "creator", "num_images", "num_download", "size")
_SHARE_NOT_VALIDATED = ("repository", "access_domain", "creator")


def lock_row(model: type, pk: int, strength: str) -> bool:
    """Inside a transaction: lock row ``pk`` of ``model`` until the transaction ends; False if it is gone.

    ``strength`` is PostgreSQL's row-lock strength: ``UPDATE`` for a row about to be deleted,
    ``NO KEY UPDATE`` for one about to be updated, ``KEY SHARE`` for one that a row about to be
    written refers to (it cannot be deleted meanwhile; other writers under it go on). Written out
    because Django's ``select_for_update()`` has no ``KEY SHARE``. A row deleted by a transaction
    that committed while this one waited is not found. On SQLite the transaction already holds
    the database's write lock: the row is only read.
    """
    table = Table(model)
    lock = f" FOR {strength}" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE {table['pk']} = %s{lock}", [pk])
        return cursor.fetchone() is not None


def _namespace_gone(namespace: Namespace) -> NamespaceNotFound:
    return NamespaceNotFound(f"Organization {namespace.name!r} not found.")


def _repository_gone(repository: Repository) -> RepositoryNotFound:
    return RepositoryNotFound(
        f"Image repository {repository.name!r} not found in organization {repository.namespace.name!r}."
    )


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
        tenant = Tenant.objects.get(pk=tenant_id)
        error = NamespaceQuotaExceeded if key == "namespace" else RepositoryQuotaExceeded
        noun = "organizations" if key == "namespace" else "image repositories"
        raise error(f"Tenant {tenant.name!r} already owns its quota of {tenant.quota(key)} {noun}.")


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


def _repository_label(namespace: Namespace, name: str) -> str:
    return f"{namespace.name}/{name}"


def namespace_create(*, name: str, tenant: Tenant, creator: User | None = None, actor: Actor) -> Namespace:
    """Create a namespace of ``tenant`` within its quota; its creator gets the manage permission on it.

    400 (name rules, quota), 409 (NamespaceExists) if the name is taken, in any tenant.
    """
    namespace = Namespace(name=name, tenant=tenant, creator=creator)
    namespace.full_clean(exclude=_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            _take_quota(tenant.pk, "namespace")
            namespace.save(force_insert=True)
            if creator is not None:
                NamespacePermission.objects.create(namespace=namespace, user=creator, level=PermissionLevel.MANAGE)
            record(actor, "namespace.create", name)
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
    actor: Actor,
) -> Repository:
    """Create an image repository in ``namespace`` within the tenant's quota.

    400 (name rules, quota), 409 (RepositoryExists) if the name is taken in the namespace, 404
    (NamespaceNotFound) if the namespace was deleted since the caller found it: the namespace is
    locked (``FOR KEY SHARE``) before the tenant's quota place is taken, so a racing namespace delete
    either waits for this create (and then answers 406) or deletes first.
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
        with transaction.atomic():
            if not lock_row(Namespace, namespace.pk, "KEY SHARE"):
                raise _namespace_gone(namespace)
            _take_quota(namespace.tenant_id, "repository")
            repository.save(force_insert=True)
            record(actor, "repository.create", _repository_label(namespace, name))
    except IntegrityError:
        if Repository.objects.filter(namespace=namespace, name=name).exists():
            raise RepositoryExists(
                f"Image repository {name!r} already exists in organization {namespace.name!r}."
            ) from None
        raise
    return repository


def namespace_delete(*, namespace: Namespace, actor: Actor) -> None:
    """Delete an empty namespace and its grants and give its quota place back.

    404 (NamespaceNotFound) if it is gone already, 406 (NamespaceNotEmpty) while it holds
    repositories. Locks the namespace, then the tenant (the module's lock order): a repository
    created in it meanwhile either committed first (406) or finds it gone (404).
    """
    try:
        with transaction.atomic():
            if not lock_row(Namespace, namespace.pk, "UPDATE"):
                raise _namespace_gone(namespace)
            lock_row(Tenant, namespace.tenant_id, "NO KEY UPDATE")
            _give_back_quota(namespace.tenant_id, "namespace", _delete(Namespace, namespace.pk))
            record(actor, "namespace.delete", namespace.name)
    except ProtectedError:
        raise NamespaceNotEmpty(
            f"Organization {namespace.name!r} still holds image repositories; delete them first."
        ) from None


def repository_update(
    *,
    repository: Repository,
    is_public: bool,
    category: str | None = None,
    description: str | None = None,
    actor: Actor,
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
    with transaction.atomic():
        # One UPDATE that says whether the row was still there (save() raises a bare DatabaseError if not).
        if not Repository.objects.filter(pk=repository.pk).update(**changes):
            raise _repository_gone(repository)
        record(actor, "repository.update", _repository_label(repository.namespace, repository.name))
    repository.updated_at = changes["updated_at"]
    return repository


def repository_delete(*, repository: Repository, actor: Actor) -> None:
    """Delete a repository and its grants and give its quota place back (its images go with it once
    the distribution side exists). 404 (RepositoryNotFound) if it is gone already: of requests
    racing to delete it, one removes it and the others answer 404.

    Locks the tenant, then the repository (the module's lock order), so that a create of the same
    name waits for this delete instead of holding the tenant while this delete waits for it.
    """
    tenant_id = repository.namespace.tenant_id
    with transaction.atomic():
        lock_row(Tenant, tenant_id, "NO KEY UPDATE")
        if not lock_row(Repository, repository.pk, "UPDATE"):
            raise _repository_gone(repository)
        _give_back_quota(tenant_id, "repository", _delete(Repository, repository.pk))
        record(actor, "repository.delete", _repository_label(repository.namespace, repository.name))


# Grants. Each call applies all of its entries or none, and answers 404 if ``obj`` is gone. The grants
# a call changes or removes are locked before they are read: of requests racing to remove one, one
# removes it and the others answer 404.


def _grant_target(obj: Namespace | Repository):
    """The grant model of ``obj``, its field, a label and the audit's resource; locks ``obj`` against its
    delete (404 if gone)."""
    if not lock_row(type(obj), obj.pk, "KEY SHARE"):
        raise _namespace_gone(obj) if isinstance(obj, Namespace) else _repository_gone(obj)
    if isinstance(obj, Namespace):
        return NamespacePermission, "namespace", obj.name, "namespace.grants"
    return RepositoryPermission, "repository", obj.name, "repository.grants"


def _audit_label(obj: Namespace | Repository) -> str:
    return obj.name if isinstance(obj, Namespace) else _repository_label(obj.namespace, obj.name)


def _within_level(actor: Actor, obj: Namespace | Repository, changes: list) -> None:
    """Refuse what reaches above the actor's level on ``obj`` (:func:`swr.policy.require_grants`).

    Only the API's callers are held to their grants; staff in the admin and operators' management
    commands are not bound by a grant (:attr:`swr.audit.Actor.held_to_grants`).
    """
    if actor.held_to_grants:
        namespace, repository = (obj, None) if isinstance(obj, Namespace) else (obj.namespace, obj)
        policy.require_grants(actor.user, namespace, repository, changes)


@transaction.atomic
def grants_create(*, obj: Namespace | Repository, levels: dict[User, int], actor: Actor) -> None:
    """Grant each user their level on ``obj``; 409 if any of them already has a grant there.

    403 for a level above the actor's own on ``obj`` (spec section 6).
    """
    model, field, label, resource = _grant_target(obj)
    _within_level(actor, obj, [(user, None, level) for user, level in levels.items()])
    existing = model.objects.filter(**{field: obj}, user__in=levels).select_related("user").first()
    if existing is not None:
        raise PermissionExists(f"User {existing.user.username!r} already has a permission on {label!r}.")
    try:
        with transaction.atomic():
            model.objects.bulk_create(model(**{field: obj}, user=user, level=level) for user, level in levels.items())
    except IntegrityError:
        raise PermissionExists(f"A permission on {label!r} was granted at the same time; read it and retry.") from None
    record(actor, f"{resource}.create", _audit_label(obj))


@transaction.atomic
def grants_update(*, obj: Namespace | Repository, levels: dict[User, int], actor: Actor) -> None:
    """Change each user's level on ``obj``; 404 if any of them has no grant there.

    403 for a level above the actor's own on ``obj``, or a grant above it (spec section 6).
    """
    model, field, label, resource = _grant_target(obj)
    grants = {g.user_id: g for g in model.objects.select_for_update().filter(**{field: obj}, user__in=levels)}
    held = {user: grants[user.pk].level if user.pk in grants else None for user in levels}
    _within_level(actor, obj, [(user, held[user], level) for user, level in levels.items()])
    for user, level in levels.items():
        if user.pk not in grants:
            raise PermissionNotFound(f"User {user.username!r} has no permission on {label!r} to change.")
        grants[user.pk].level = level
    for grant in grants.values():
        grant.save(update_fields=["level", "updated_at"])
    record(actor, f"{resource}.update", _audit_label(obj))


@transaction.atomic
def grants_delete(*, obj: Namespace | Repository, users: list[User], actor: Actor) -> None:
    """Remove the users' grants on ``obj``; 404 if any of them has none there.

    403 for a grant above the actor's own level on ``obj`` (spec section 6).
    """
    model, field, label, resource = _grant_target(obj)
    grants = model.objects.filter(**{field: obj}, user__in=users)
    held = dict(grants.select_for_update().values_list("user_id", "level"))
    _within_level(actor, obj, [(user, held[user.pk], None) for user in users if user.pk in held])
    for user in users:
        if user.pk not in held:
            raise PermissionNotFound(f"User {user.username!r} has no permission on {label!r} to delete.")
    grants.delete()
    record(actor, f"{resource}.delete", _audit_label(obj))


def _credential_label(credential: ApiToken | AccessKey) -> str:
    return f"{credential._meta.model_name}:{credential.pk} {credential}"


@transaction.atomic
def access_key_issue(*, user: User, description: str = "", actor: Actor) -> tuple[AccessKey, str]:
    """Issue an AK/SK pair for ``user``; the secret key is returned once and stored encrypted."""
    access_key, secret_key = signing.new_key_pair()
    key = AccessKey.objects.create(
        user=user, access_key=access_key, secret_encrypted=signing.encrypt_secret(secret_key), description=description
    )
    record(actor, "accesskey.create", _credential_label(key))
    return key, secret_key


@transaction.atomic
def token_issue(*, user: User, lifetime: timedelta | None = None, actor: Actor) -> tuple[ApiToken, str]:
    """Issue an API token for ``user``; the secret is returned once and only its hash is stored."""
    raw = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=ApiToken.hash_key(raw),
        hint=raw[: len(ApiToken.PREFIX) + 6],
        expires_at=timezone.now() + (lifetime or settings.SWR_TOKEN_LIFETIME),
    )
    record(actor, "apitoken.create", _credential_label(token))
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor) -> None:
    """Revoke a token: it stops working at once."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor, "apitoken.revoke", _credential_label(token))


@transaction.atomic
def temporary_login_issue(*, user: User, kind: str, lifetime: timedelta, actor: Actor) -> tuple[TemporaryLogin, str]:
    """Issue a temporary registry login of ``user`` (spec section 11) valid for ``lifetime``: the row and its
    secret, returned once; only the secret's SHA-256 is stored."""
    raw = secrets.token_urlsafe(32)
    login = TemporaryLogin(
        user=user,
        identifier=secrets.token_hex(16),
        secret_hash=TemporaryLogin.hash_secret(raw),
        kind=kind,
        expires_at=timezone.now() + lifetime,
    )
    login.full_clean(exclude=("user",), validate_unique=False, validate_constraints=False)
    login.save(force_insert=True)
    record(actor, "temporarylogin.create", f"temporarylogin:{login.pk} {login}")
    return login, raw


@transaction.atomic
def temporary_login_revoke(*, login: TemporaryLogin, actor: Actor) -> None:
    """Revoke a temporary login: it is deleted and stops working at once (a registry bearer token issued for it
    lives its own short lifetime, SWR_REGISTRY_TOKEN_LIFETIME)."""
    if _delete(TemporaryLogin, login.pk):
        record(actor, "temporarylogin.delete", f"temporarylogin:{login.pk} {login}")


# Shares of a repository with other tenants (spec section 12). Each write locks the repository's row
# (FOR NO KEY UPDATE, rank 3 of the lock order): the shares of one repository are written one at a time, so
# the count of at most SWR_MAX_SHARES_PER_REPOSITORY holds, and of two shares of one pair one wins and the
# other answers 409 (the unique constraint is the last guard).


def _share_label(repository: Repository, tenant: Tenant) -> str:
    return f"{_repository_label(repository.namespace, repository.name)} -> {tenant.name}"


def _lock_repository(repository: Repository) -> Repository:
    """Lock ``repository`` against concurrent share writes and its delete; re-read what a share depends on."""
    locked = Repository.objects.select_for_update(no_key=True).filter(pk=repository.pk).only("is_public").first()
    if locked is None:
        raise _repository_gone(repository)
    return locked


def _share_exists(repository: Repository, tenant: Tenant) -> ShareExists:
    return ShareExists(f"Image repository {repository.name!r} is already shared with {tenant.name!r}.")


def share_create(
    *,
    repository: Repository,
    access_domain: Tenant,
    permit: str = "read",
    deadline=None,
    description: str = "",
    creator: User | None = None,
    actor: Actor,
) -> RepositoryShare:
    """Share the private ``repository`` with tenant ``access_domain`` until ``deadline`` (None: forever).

    400 for a public repository, the repository's own tenant, a bad permit or description, or a repository
    already shared with SWR_MAX_SHARES_PER_REPOSITORY tenants; 409 (ShareExists) when it is shared with that
    tenant already; 404 when the repository was deleted meanwhile.
    """
    share = RepositoryShare(
        repository=repository,
        access_domain=access_domain,
        permit=permit,
        deadline=deadline,
        description=description,
        creator=creator,
    )
    share.full_clean(exclude=_SHARE_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
    label = _share_label(repository, access_domain)
    try:
        with transaction.atomic():
            if _lock_repository(repository).is_public:
                raise SwrError(
                    f"Image repository {repository.name!r} is public: every tenant reads it already; only private "
                    "repositories are shared.",
                    details=[{"field": "repository", "error_msg": "public repositories are not shared"}],
                )
            if RepositoryShare.objects.filter(repository=repository, access_domain=access_domain).exists():
                raise _share_exists(repository, access_domain)
            limit = settings.SWR_MAX_SHARES_PER_REPOSITORY
            if RepositoryShare.objects.filter(repository=repository).count() >= limit:
                raise SwrError(
                    f"Image repository {repository.name!r} is shared with {limit} tenants already, the most allowed; "
                    "stop a share first.",
                    details=[{"field": "access_domain", "error_msg": f"at most {limit} tenants per repository"}],
                )
            share.save(force_insert=True)
            record(actor, "repository.share.create", label)
    except IntegrityError:
        if RepositoryShare.objects.filter(repository=repository, access_domain=access_domain).exists():
            raise _share_exists(repository, access_domain) from None
        raise
    return share


def _share_gone(repository: Repository, tenant: Tenant) -> ShareNotFound:
    return ShareNotFound(f"Image repository {repository.name!r} is not shared with {tenant.name!r}.")


def share_update(*, repository: Repository, access_domain: Tenant, actor: Actor, **changes) -> RepositoryShare:
    """Change the share of ``repository`` with ``access_domain``: any of ``permit``, ``deadline`` (None:
    forever), ``description``. 404 (ShareNotFound) without such a share, 400 for a bad value."""
    with transaction.atomic():
        _lock_repository(repository)
        share = (
            RepositoryShare.objects.select_related("creator")
            .filter(repository=repository, access_domain=access_domain)
            .first()
        )
        if share is None:
            raise _share_gone(repository, access_domain)
        share.repository, share.access_domain = repository, access_domain
        for field, value in changes.items():
            setattr(share, field, value)
        share.full_clean(exclude=_SHARE_NOT_VALIDATED, validate_unique=False, validate_constraints=False)
        share.save(update_fields=[*changes, "updated_at"])
        record(actor, "repository.share.update", _share_label(repository, access_domain))
    return share


def share_delete(*, repository: Repository, access_domain: Tenant, actor: Actor) -> None:
    """Stop sharing ``repository`` with ``access_domain``: the tenant's users lose read and pull at once.
    404 (ShareNotFound) without such a share (of requests racing to stop it, one does, the others answer 404)."""
    with transaction.atomic():
        _lock_repository(repository)
        deleted, _ = RepositoryShare.objects.filter(repository=repository, access_domain=access_domain).delete()
        if not deleted:
            raise _share_gone(repository, access_domain)
        record(actor, "repository.share.delete", _share_label(repository, access_domain))
