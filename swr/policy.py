"""Who may do what: the one place that decides "may USER do ACTION on OBJ".

Levels follow spec section 6: 7 manage, 3 edit, 1 read. A tenant
administrator has manage on every namespace of the tenant; anybody else has
the level of their grant on the namespace, or nothing. Public repositories
are readable by every authenticated user of every tenant.
"""

from django.db.models import OuterRef, Q, QuerySet, Subquery

from swr.api.errors import OtherTenant, PermissionTooLow
from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, User

# What each action needs on the namespace.
REQUIRED_LEVEL = {
    "namespace.read": PermissionLevel.READ,
    "namespace.delete": PermissionLevel.MANAGE,
    "repository.read": PermissionLevel.READ,
    "repository.create": PermissionLevel.EDIT,
    "repository.update": PermissionLevel.EDIT,
    "repository.delete": PermissionLevel.MANAGE,
}


def with_user_level(queryset: QuerySet[Namespace], user: User) -> QuerySet[Namespace]:
    """Annotate each namespace with the user's own grant level (``granted_level``), in the same query."""
    grants = NamespacePermission.objects.filter(namespace=OuterRef("pk"), user=user).values("level")[:1]
    return queryset.annotate(granted_level=Subquery(grants))


def namespace_level(user: User, namespace: Namespace) -> int:
    """The user's permission level on the namespace; 0 for none."""
    if user.tenant_id is None or user.tenant_id != namespace.tenant_id:
        return 0
    if user.is_tenant_admin:
        return PermissionLevel.MANAGE
    if hasattr(namespace, "granted_level"):
        return namespace.granted_level or 0
    grant = NamespacePermission.objects.filter(namespace=namespace, user=user).values_list("level", flat=True)
    return grant.first() or 0


def can(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> bool:
    """May ``user`` do ``action`` on ``namespace`` (or on ``repository`` in it)?"""
    if action == "repository.read" and repository is not None and repository.is_public:
        return True
    return namespace_level(user, namespace) >= REQUIRED_LEVEL[action]


def require(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> None:
    """Raise the SWR error that explains why ``user`` may not do ``action``, if they may not."""
    if can(user, action, namespace, repository):
        return
    if user.tenant_id != namespace.tenant_id:
        raise OtherTenant(f"Organization {namespace.name!r} belongs to another tenant.")
    needed = REQUIRED_LEVEL[action]
    raise PermissionTooLow(
        f"This needs the {needed.label.lower()} permission ({needed.value}) on organization "
        f"{namespace.name!r}; you have {namespace_level(user, namespace)}."
    )


def visible_namespaces(user: User) -> QuerySet[Namespace]:
    """Namespaces the user holds a permission on (all of the tenant's for a tenant administrator)."""
    if user.tenant_id is None:
        return Namespace.objects.none()
    queryset = with_user_level(Namespace.objects.all(), user)
    if user.is_tenant_admin:
        return queryset.filter(tenant_id=user.tenant_id)
    return queryset.filter(granted_level__isnull=False, tenant_id=user.tenant_id)


def readable_repositories(user: User) -> QuerySet[Repository]:
    """Repositories the user may read: public ones, and those of namespaces they may read."""
    readable = Q(is_public=True)
    if user.tenant_id is not None:
        if user.is_tenant_admin:
            readable |= Q(namespace__tenant_id=user.tenant_id)
        else:
            granted = NamespacePermission.objects.filter(user=user, namespace__tenant_id=user.tenant_id)
            readable |= Q(namespace_id__in=granted.values("namespace_id"))
    return Repository.objects.filter(readable)
