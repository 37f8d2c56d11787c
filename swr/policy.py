"""Who may do what: the one place that decides "may USER do ACTION on OBJ".

Levels follow spec section 6: 7 manage, 3 edit, 1 read. A tenant
administrator has manage on every namespace of the tenant; anybody else has
the level of their grant on the namespace, or nothing.
"""

from django.db.models import OuterRef, QuerySet, Subquery

from swr.api.errors import OtherTenant, PermissionTooLow
from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, User

# What each action needs on the namespace.
REQUIRED_LEVEL = {
    "namespace.read": PermissionLevel.READ,
    "repository.create": PermissionLevel.EDIT,
    "namespace.delete": PermissionLevel.MANAGE,
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


def can(user: User, action: str, namespace: Namespace) -> bool:
    """May ``user`` do ``action`` on ``namespace``?"""
    return namespace_level(user, namespace) >= REQUIRED_LEVEL[action]


def require(user: User, action: str, namespace: Namespace) -> None:
    """Raise the SWR error that explains why ``user`` may not do ``action``, if they may not."""
    if can(user, action, namespace):
        return
    if user.tenant_id != namespace.tenant_id:
        raise OtherTenant(f"Organization {namespace.name!r} belongs to another tenant.")
    needed = REQUIRED_LEVEL[action]
    raise PermissionTooLow(
        f"This needs the {needed.label.lower()} permission ({needed.value}) on organization "
        f"{namespace.name!r}; you have {namespace_level(user, namespace)}."
    )
