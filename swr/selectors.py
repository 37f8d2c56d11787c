"""Reads of the request paths: who calls, and the organization or repository a request names.

Django's ORM only (no SQL written out). Each answers one query and loads what
the policy (swr/policy.py) and the answer need with it: a credential with its
user and the user's tenant; an organization or a repository with the caller's
own grant level on it (``granted_level``, None without a grant). A name that
breaks its rule (swr/names.py) cannot exist: it is answered None without a query.
"""

from swr import names, policy
from swr.models import AccessKey, ApiToken, Namespace, Repository, TemporaryLogin, Tenant, User


def api_token(key_hash: str) -> ApiToken | None:
    """The API token with this SHA-256 (hex), with ``user`` and ``user.tenant``; None if there is none."""
    return ApiToken.objects.select_related("user__tenant").filter(key_hash=key_hash).first()


def access_key(key: str) -> AccessKey | None:
    """The access key (AK) ``key``, with ``user`` and ``user.tenant``; None if there is none."""
    return AccessKey.objects.select_related("user__tenant").filter(access_key=key).first()


def tenant(name: str) -> Tenant | None:
    """The tenant (SWR's domain) named ``name``; None if there is none (a name no tenant can have, with a NUL or
    longer than the column, is not looked up)."""
    if not name or "\x00" in name or len(name) > Tenant._meta.get_field("name").max_length:
        return None
    return Tenant.objects.filter(name=name).first()


def temporary_login(identifier: str) -> TemporaryLogin | None:
    """The temporary registry login ``identifier`` (spec section 11), with ``user`` and ``user.tenant``; None if
    there is none."""
    if "\x00" in identifier or len(identifier) > TemporaryLogin._meta.get_field("identifier").max_length:
        return None
    return TemporaryLogin.objects.select_related("user__tenant").filter(identifier=identifier).first()


def user(pk: int) -> User | None:
    """The user ``pk``, with ``tenant``; None if there is none (the subject of a registry bearer token)."""
    return User.objects.select_related("tenant").filter(pk=pk).first()


def namespace(name: str, user: User, *, related: bool = True) -> Namespace | None:
    """The organization ``name`` with ``user``'s own grant level on it (``granted_level``); None if there is none.

    With ``related``, its tenant and creator come in the same query; without, they are not loaded (for
    an answer that shows neither).
    """
    if not names.NAMESPACE.is_valid(name):
        return None
    namespaces = policy.with_user_level(Namespace.objects.filter(name=name), user)
    if related:
        namespaces = namespaces.select_related("tenant", "creator")
    return namespaces.first()


def repository(namespace: Namespace, name: str, user: User) -> Repository | None:
    """The repository ``name`` (with '/', not '$') of ``namespace``, with its creator and ``user``'s own grant
    level on it (``granted_level``); None if there is none."""
    if not names.REPOSITORY.is_valid(name):
        return None
    repositories = namespace.repositories.select_related("creator").filter(name=name)
    found = policy.with_repository_level(repositories, user).first()
    if found is not None:
        found.namespace = namespace
    return found
