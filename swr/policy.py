"""Who may do what: the one place that decides "may USER do ACTION on OBJ".

Spec section 6. Levels: 7 manage, 3 edit, 1 read. A tenant administrator has
manage on every namespace of the tenant; anybody else has the level of their
grant on the namespace, or nothing. A repository grant adds to (never lowers)
what the namespace grant gives. Grants only ever count inside the tenant that
owns the namespace. Public repositories are readable by every authenticated
user of every tenant.
"""

from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery, Value

from swr.api.errors import OtherTenant, PermissionTooLow
from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission, User

READ, EDIT, MANAGE = PermissionLevel.READ, PermissionLevel.EDIT, PermissionLevel.MANAGE

# action: (level needed on the namespace, or level needed on the repository itself; None: no such way)
REQUIREMENTS = {
    "namespace.read": (READ, None),
    "namespace.delete": (MANAGE, None),
    "namespace.grants.read": (READ, None),
    "namespace.grants.change": (MANAGE, None),
    "repository.create": (EDIT, None),
    "repository.read": (READ, READ),
    "repository.update": (EDIT, MANAGE),
    "repository.delete": (MANAGE, MANAGE),
    "repository.grants.read": (READ, READ),
    "repository.grants.change": (EDIT, MANAGE),
}


def with_user_level(queryset: QuerySet[Namespace], user: User) -> QuerySet[Namespace]:
    """Annotate each namespace with the user's own grant level (``granted_level``), in the same query."""
    grants = NamespacePermission.objects.filter(namespace=OuterRef("pk"), user=user).values("level")[:1]
    return queryset.annotate(granted_level=Subquery(grants))


def with_repository_level(queryset: QuerySet[Repository], user: User) -> QuerySet[Repository]:
    """Annotate each repository with the user's own repository grant level (``granted_level``)."""
    grants = RepositoryPermission.objects.filter(repository=OuterRef("pk"), user=user).values("level")[:1]
    return queryset.annotate(granted_level=Subquery(grants))


def _granted(obj, model, user: User, **lookup) -> int:
    if hasattr(obj, "granted_level"):
        return obj.granted_level or 0
    return model.objects.filter(user=user, **lookup).values_list("level", flat=True).first() or 0


def namespace_level(user: User, namespace: Namespace) -> int:
    """The user's permission level on the namespace; 0 for none."""
    if user.tenant_id is None or user.tenant_id != namespace.tenant_id:
        return 0
    if user.is_tenant_admin:
        return MANAGE
    return _granted(namespace, NamespacePermission, user, namespace=namespace)


def repository_level(user: User, repository: Repository) -> int:
    """The user's own grant on the repository (not counting the namespace's); 0 for none."""
    if user.tenant_id is None or user.tenant_id != repository.namespace.tenant_id:
        return 0
    return _granted(repository, RepositoryPermission, user, repository=repository)


def can(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> bool:
    """May ``user`` do ``action`` on ``namespace``, or on ``repository`` in it?"""
    on_namespace, on_repository = REQUIREMENTS[action]
    if repository is not None and action == "repository.read" and repository.is_public:
        return True
    if namespace_level(user, namespace) >= on_namespace:
        return True
    return repository is not None and on_repository is not None and repository_level(user, repository) >= on_repository


def require(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> None:
    """Raise the SWR error that explains why ``user`` may not do ``action``, if they may not."""
    if can(user, action, namespace, repository):
        return
    if user.tenant_id != namespace.tenant_id:
        raise OtherTenant(f"Organization {namespace.name!r} belongs to another tenant.")
    on_namespace, on_repository = REQUIREMENTS[action]
    needed = f"the {on_namespace.label.lower()} permission ({on_namespace.value}) on organization {namespace.name!r}"
    if repository is not None and on_repository is not None:
        needed += f" or {on_repository.value} on repository {repository.name!r}"
    raise PermissionTooLow(f"This needs {needed}; you have {namespace_level(user, namespace)}.")


def visible_namespaces(user: User, *, with_repository_grants: bool = False) -> QuerySet[Namespace]:
    """Namespaces the user holds a permission on (all of the tenant's for a tenant administrator).

    ``with_repository_grants`` adds those where the user holds only a repository grant.
    """
    if user.tenant_id is None:
        return Namespace.objects.none()
    queryset = with_user_level(Namespace.objects.filter(tenant_id=user.tenant_id), user)
    if user.is_tenant_admin:
        return queryset
    visible = Q(granted_level__isnull=False)
    if with_repository_grants:
        via_repositories = RepositoryPermission.objects.filter(user=user).values("repository__namespace_id")
        visible |= Q(pk__in=via_repositories)
    return queryset.filter(visible)


def readable_repositories(user: User) -> QuerySet[Repository]:
    """Repositories the user may read: public ones, those of namespaces they may read, those granted to them.

    The namespaces and repositories the user holds grants on are read first (one
    query) and given to the listing as plain id lists: PostgreSQL can then
    combine the indexes on ``is_public``, ``namespace_id`` and ``id`` (a bitmap
    OR) instead of scanning every repository, so the listing's cost follows
    what the caller may see, not the size of the table.
    """
    readable = Q(is_public=True)
    if user.tenant_id is not None:
        namespace, repository = Value("namespace", CharField()), Value("repository", CharField())
        if user.is_tenant_admin:
            grants = Namespace.objects.filter(tenant_id=user.tenant_id).values_list("id", namespace)
        else:
            namespaces = NamespacePermission.objects.filter(user=user, namespace__tenant_id=user.tenant_id)
            repositories = RepositoryPermission.objects.filter(
                user=user, repository__namespace__tenant_id=user.tenant_id
            )
            grants = namespaces.values_list("namespace_id", namespace).union(
                repositories.values_list("repository_id", repository), all=True
            )
        rows = list(grants)
        readable |= Q(namespace_id__in=[pk for pk, kind in rows if kind == "namespace"])
        readable |= Q(pk__in=[pk for pk, kind in rows if kind == "repository"])
    return Repository.objects.filter(readable)
