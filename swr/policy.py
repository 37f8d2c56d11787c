"""Who may do what: the one place that decides "may USER do ACTION on OBJ".

Spec section 6. Levels: 7 manage, 3 edit, 1 read. A tenant administrator has
manage on every namespace of the tenant; anybody else has the level of their
grant on the namespace, or nothing. A repository grant adds to (never lowers)
what the namespace grant gives. Grants only ever count inside the tenant that
owns the namespace. Public repositories are readable by every authenticated
user of every tenant.

The registry's actions (pull, push, delete; spec section 9) follow from the same levels:
:func:`registry_actions`, and :func:`pullable_repositories` for its catalog.

Two more rules of spec section 6 live here (require_grants, require_repository):
nobody grants a level above their own effective level on the object, and whether a
private repository exists is never told to someone who may not read it. Organization names are
not hidden that way: they are unique across all tenants and ``POST /v2/manage/namespaces``
answers 409 for any existing one (spec section 4), so a lookup's 404 for a missing organization
and 403 for another's tell nothing that creating it would not.
"""

from collections.abc import Iterable
from typing import NoReturn

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.utils import timezone

from swr import names, selectors
from swr.choices import PermissionLevel
from swr.errors import OtherTenant, PermissionTooLow, RepositoryNotFound
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission, RepositoryShare, User

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
    "repository.shares.read": (READ, READ),
    "repository.shares.change": (MANAGE, MANAGE),
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


def effective_level(user: User, namespace: Namespace, repository: Repository | None = None) -> int:
    """The user's level on ``namespace``, or on ``repository`` in it (the higher of the two grants); 0 for none.

    What the user holds, not what a public repository lets everybody read.
    """
    level = namespace_level(user, namespace)
    if repository is not None:
        level = max(level, repository_level(user, repository))
    return level


def live_shares(tenant_id: int) -> QuerySet[RepositoryShare]:
    """The shares with tenant ``tenant_id`` that give something now: no deadline, or one still ahead
    (spec section 12). An expired or deleted share gives nothing, from the moment it ends."""
    return RepositoryShare.objects.filter(access_domain_id=tenant_id).filter(
        Q(deadline__isnull=True) | Q(deadline__gt=timezone.now())
    )


def shared_with(user: User, repository: Repository) -> bool:
    """Whether a live share of ``repository`` with the user's tenant gives the user read (1) on it (spec
    section 12): every user of that tenant reads it in the management API and pulls it in the registry."""
    if user.tenant_id is None or user.tenant_id == repository.namespace.tenant_id:
        return False
    return live_shares(user.tenant_id).filter(repository=repository).exists()


def can(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> bool:
    """May ``user`` do ``action`` on ``namespace``, or on ``repository`` in it?

    Reading a repository is also allowed by its being public, or by a live share with the user's tenant.
    """
    on_namespace, on_repository = REQUIREMENTS[action]
    if repository is not None and action == "repository.read" and repository.is_public:
        return True
    if namespace_level(user, namespace) >= on_namespace:
        return True
    if repository is not None and on_repository is not None and repository_level(user, repository) >= on_repository:
        return True
    return repository is not None and action == "repository.read" and shared_with(user, repository)


def require(user: User, action: str, namespace: Namespace, repository: Repository | None = None) -> None:
    """Raise the SWR error that explains why ``user`` may not do ``action``, if they may not."""
    if not can(user, action, namespace, repository):
        held = 0 if repository is None else repository_level(user, repository)
        _refuse(user, action, namespace, None if repository is None else repository.name, held)


def require_repository(
    user: User, action: str, namespace: Namespace, name: str, repository: Repository | None
) -> Repository:
    """The repository ``name`` of ``namespace`` (``repository``: its row, None when there is none), if the user
    may do ``action`` on it; else the error to answer.

    A missing name is a 404 (4040010) only for those who may read the namespace, who could list its
    repositories anyway. Anyone else gets for a missing name exactly the refusal (status, code, message)
    of an existing private repository they hold no grant on: whether a private repository exists is
    never told to someone who may not read it (spec section 6).
    """
    if repository is None:
        if can(user, "namespace.read", namespace):
            raise RepositoryNotFound(f"Image repository {name!r} not found in organization {namespace.name!r}.")
        _refuse(user, action, namespace, name, 0)
    require(user, action, namespace, repository)
    return repository


def _refuse(user: User, action: str, namespace: Namespace, repository_name: str | None, held: int) -> NoReturn:
    """403: another tenant's namespace (4039001), or a level too low (4039002) saying what is needed.

    The message depends only on the names, the action and the levels the user holds, never on
    whether the repository exists: a missing one reads as one the user holds no grant on (``held`` 0).
    """
    if user.tenant_id != namespace.tenant_id:
        raise OtherTenant(f"Organization {namespace.name!r} belongs to another tenant.")
    on_namespace, on_repository = REQUIREMENTS[action]
    needed = f"the {on_namespace.label.lower()} permission ({on_namespace.value}) on organization {namespace.name!r}"
    if repository_name is not None and on_repository is not None:
        needed += f" or {on_repository.value} on repository {repository_name!r}"
    you_have = f"you have {namespace_level(user, namespace)}"
    if held:
        you_have += f" on the organization and {held} on the repository"
    raise PermissionTooLow(f"This needs {needed}; {you_have}.")


def _level(level: int) -> str:
    return f"{PermissionLevel(level).label.lower()} ({level})" if level in PermissionLevel.values else str(level)


def require_grants(
    user: User,
    namespace: Namespace,
    repository: Repository | None,
    changes: Iterable[tuple[User, int | None, int | None]],
) -> None:
    """Refuse (403 4039002) grant changes on ``namespace``, or on ``repository`` in it, beyond ``user``'s own level.

    ``changes``: one ``(holder, held, granted)`` per grant to write: the level ``holder`` holds there
    now (None: no grant yet) and the level the grant is to have (None: it is removed). Spec section 6:
    nobody grants a level above their own effective level on the object (:func:`effective_level`),
    to others or to themselves. And a grant above that level is out of reach: it is changed or
    removed only by someone who holds at least as much, or an editor could demote or remove the
    managers of what he edits, taking away what he could never give. Every entry that breaks the
    rule is in ``details``; the message is the first.
    """
    own = effective_level(user, namespace, repository)
    target = f"organization {namespace.name!r}" if repository is None else f"repository {repository.name!r}"
    problems = []
    for holder, held, granted in changes:
        if granted is not None and granted > own:
            problems.append(
                f"You hold {_level(own)} on {target}: nobody grants above their own level, "
                f"so you cannot give {_level(granted)} to user {holder.username!r}."
            )
        elif held is not None and held > own:
            problems.append(
                f"User {holder.username!r} holds {_level(held)} on {target}, above your {_level(own)}: only "
                f"someone who holds at least {_level(held)} there may change or remove that grant."
            )
    if problems:
        raise PermissionTooLow(problems[0], details=[{"field": "auth", "error_msg": p} for p in problems])


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
    """Repositories the user may read: public ones, those of namespaces they may read, those granted to them,
    those shared with their tenant by a live share (spec section 12).

    The namespaces and repositories the user holds grants on, and those shared with the tenant, are read
    first (one query) and given to the listing as plain id lists: PostgreSQL can then
    combine the indexes on ``is_public``, ``namespace_id`` and ``id`` (a bitmap
    OR) instead of scanning every repository, so the listing's cost follows
    what the caller may see, not the size of the table.
    """
    readable = Q(is_public=True)
    if user.tenant_id is not None:
        namespace, repository = Value("namespace", CharField()), Value("repository", CharField())
        shared = live_shares(user.tenant_id).order_by().values_list("repository_id", repository)
        if user.is_tenant_admin:
            namespaces = Namespace.objects.filter(tenant_id=user.tenant_id).order_by().values_list("id", namespace)
            grants = namespaces.union(shared, all=True)
        else:
            namespaces = NamespacePermission.objects.filter(user=user, namespace__tenant_id=user.tenant_id)
            repositories = RepositoryPermission.objects.filter(
                user=user, repository__namespace__tenant_id=user.tenant_id
            )
            grants = namespaces.values_list("namespace_id", namespace).union(
                repositories.values_list("repository_id", repository), shared, all=True
            )
        rows = list(grants)
        readable |= Q(namespace_id__in=[pk for pk, kind in rows if kind == "namespace"])
        readable |= Q(pk__in=[pk for pk, kind in rows if kind == "repository"])
    return Repository.objects.filter(readable)


SHARED_BY = ("self", "thirdparty")


def shared_repositories(user: User, shared_by: str, expired: bool = True) -> QuerySet[Repository]:
    """The repositories of the shared-repository lists (spec section 12), each annotated ``share_live``:

    - ``self``: the repositories of the user's tenant that the user may read and that are shared with some
      tenant (``share_live``: one of those shares is live);
    - ``thirdparty``: the repositories shared with the user's tenant (``share_live``: the share is live; only
      then does it give read, :func:`shared_with`); those whose share expired only with ``expired`` (the v3
      list marks them ``status: false``; the v2 list, section 5's full answer with tags, shows live ones only).
    """
    if user.tenant_id is None:
        return Repository.objects.none()
    if shared_by == "self":
        shares = RepositoryShare.objects.filter(repository=OuterRef("pk"))
        live = Q(deadline__isnull=True) | Q(deadline__gt=timezone.now())
        queryset = readable_repositories(user).filter(namespace__tenant_id=user.tenant_id)
        return queryset.filter(Exists(shares)).annotate(share_live=Exists(shares.filter(live)))
    shares = RepositoryShare.objects.filter(access_domain_id=user.tenant_id) if expired else live_shares(user.tenant_id)
    return Repository.objects.filter(pk__in=shares.values("repository_id")).annotate(
        share_live=Exists(live_shares(user.tenant_id).filter(repository=OuterRef("pk")))
    )


# The registry (spec section 9): its actions on a repository, in the order a token scope writes them.
PULL, PUSH, DELETE = "pull", "push", "delete"
# What each action needs, in words for the caller who was refused it (said by the registry's 403 DENIED): the
# rules of registry_actions below, which they must follow.
REGISTRY_ACTION_NEEDS = {
    PULL: "pull needs read on the repository or its organization, a share with your tenant, or a public repository",
    PUSH: "push needs edit on the organization (or manage on an existing repository)",
    DELETE: "delete needs manage on the organization or the repository",
}
REGISTRY_ACTIONS = (PULL, PUSH, DELETE)


def registry_actions(user: User | None, namespace_name: str, repository_name: str) -> set[str]:
    """What ``user`` (None: anonymous) may do in the registry on repository ``repository_name`` of organization
    ``namespace_name``: a subset of {"pull", "push", "delete"} (spec section 9, with section 6's levels).

    - pull: read (1) on the repository (a grant on the organization or on the repository); a public
      repository, for every authenticated user of any tenant or none;
    - push to an existing repository: edit (3) on the organization or manage (7) on the repository;
    - push to a repository that does not exist yet (the push creates it): edit (3) on the organization.
      A missing organization is never created by a push: nothing is allowed in it;
    - delete (manifests, tags, blobs): manage (7) on the organization or on the repository.
    A tenant administrator holds manage on every organization of the tenant. Anonymous callers may pull
    public repositories, and only with SWR_ANONYMOUS_PULL.

    A missing repository gets what the organization's grant gives (a reader of the organization may list its
    repositories anyway); to anyone else it reads as nothing, exactly as an existing private repository
    they hold no grant on: the answer never tells whether a private repository exists. A live share with the
    user's tenant (spec section 12) gives pull, through :func:`can`'s read (one more query).
    One query for an anonymous caller, at most two otherwise (the organization, then the repository, each
    with the user's own grant level), three for another tenant's private repository (its live share).
    """
    if not (names.NAMESPACE.is_valid(namespace_name) and names.REPOSITORY.is_valid(repository_name)):
        return set()  # a name that breaks its rule cannot exist, nor be created
    if user is None:
        if not settings.SWR_ANONYMOUS_PULL:
            return set()
        public = Repository.objects.filter(namespace__name=namespace_name, name=repository_name, is_public=True)
        return {PULL} if public.exists() else set()
    namespace = selectors.namespace(namespace_name, user, related=False)
    if namespace is None:
        return set()
    repository = selectors.repository(namespace, repository_name, user)
    if repository is None:
        needs = {PULL: "repository.read", PUSH: "repository.create", DELETE: "repository.delete"}
    else:
        needs = {PULL: "repository.read", PUSH: "repository.update", DELETE: "repository.delete"}
    return {action for action, operation in needs.items() if can(user, operation, namespace, repository)}


def pullable_repositories(user: User | None) -> QuerySet[Repository]:
    """Repositories ``user`` (None: anonymous) may pull: the registry's catalog (``GET /v2/_catalog``).

    What :func:`readable_repositories` gives an authenticated user; the public repositories to an anonymous
    caller when SWR_ANONYMOUS_PULL is on, else none.
    """
    if user is not None:
        return readable_repositories(user)
    if settings.SWR_ANONYMOUS_PULL:
        return Repository.objects.filter(is_public=True)
    return Repository.objects.none()
