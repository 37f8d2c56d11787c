"""The registry's permissions (spec section 9, with section 6's levels): policy.registry_actions and the catalog
rule, as a matrix of operations x callers x a private and a public repository, the expected answers derived
from the spec's table written out again here (not imported from the code)."""

import pytest

from swr import policy, services
from swr.models import NamespacePermission, RepositoryPermission, User

from .helpers import OPERATOR

pytestmark = pytest.mark.django_db

# Spec section 9: what each registry operation needs, as (level on the organization, level on the repository
# itself or None). pull also: a public repository for any authenticated user (anonymous ones only with
# SWR_ANONYMOUS_PULL). push-new: a push to a repository that does not exist yet, which creates it.
SPEC_TABLE = {
    "pull": (1, 1),
    "push": (3, 7),
    "push-new": (3, None),
    "delete": (7, 7),
}
ACTION = {"pull": "pull", "push": "push", "push-new": "push", "delete": "delete"}

# Callers: (tenant: "same", "other", "none" or None for anonymous; tenant administrator; level on organization
# "group"; level on the repository asked about; SWR_ANONYMOUS_PULL).
CALLERS = {
    "anonymous": (None, False, 0, 0, False),
    "anonymous, anonymous pull on": (None, False, 0, 0, True),
    "other tenant user": ("other", False, 0, 0, False),
    "other tenant admin": ("other", True, 0, 0, False),
    "user without tenant": ("none", False, 0, 0, False),
    "no grant": ("same", False, 0, 0, False),
    "namespace read": ("same", False, 1, 0, False),
    "namespace edit": ("same", False, 3, 0, False),
    "namespace manage": ("same", False, 7, 0, False),
    "repo read": ("same", False, 0, 1, False),
    "repo edit": ("same", False, 0, 3, False),
    "repo manage only": ("same", False, 0, 7, False),
    "namespace read + repo manage": ("same", False, 1, 7, False),
    "tenant admin": ("same", True, 0, 0, False),
}
VISIBILITY = ["private", "public"]


def allowed(operation: str, caller: str, visibility: str) -> bool:
    tenant, is_admin, on_namespace, on_repository, anonymous_pull = CALLERS[caller]
    if operation == "pull" and visibility == "public" and (tenant is not None or anonymous_pull):
        return True
    if tenant != "same":
        return False
    need_namespace, need_repository = SPEC_TABLE[operation]
    level = 7 if is_admin else on_namespace
    if operation == "push-new":
        on_repository = 0  # there is no repository to hold a grant on
    return level >= need_namespace or (need_repository is not None and on_repository >= need_repository)


@pytest.fixture
def world(tenant, other_tenant, namespace, make_user):
    """Organization 'group' of tenant acme holding private 'team/web' and public 'pub'."""
    return {
        "private": services.repository_create(namespace=namespace, name="team/web", is_public=False, actor=OPERATOR),
        "public": services.repository_create(namespace=namespace, name="pub", is_public=True, actor=OPERATOR),
    }


@pytest.fixture
def caller_for(world, tenant, other_tenant, namespace, settings):
    """The user (None: anonymous) of a CALLERS row, with its grants on 'group' and on the repository of
    ``visibility``; SWR_ANONYMOUS_PULL set as the row says."""

    def make(caller: str, visibility: str) -> User | None:
        kind, is_admin, on_namespace, on_repository, anonymous_pull = CALLERS[caller]
        settings.SWR_ANONYMOUS_PULL = anonymous_pull
        if kind is None:
            return None
        own_tenant = {"same": tenant, "other": other_tenant, "none": None}[kind]
        user = User.objects.create_user(username="caller", tenant=own_tenant, is_tenant_admin=is_admin)
        if on_namespace:
            NamespacePermission.objects.create(user=user, namespace=namespace, level=on_namespace)
        if on_repository:
            RepositoryPermission.objects.create(user=user, repository=world[visibility], level=on_repository)
        return user

    return make


def repository_name(world, operation: str, visibility: str) -> str:
    return "team/new" if operation == "push-new" else world[visibility].name


@pytest.mark.parametrize("visibility", VISIBILITY)
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", list(SPEC_TABLE))
def test_registry_matrix(world, caller_for, operation, caller, visibility):
    user = caller_for(caller, visibility)
    actions = policy.registry_actions(user, "group", repository_name(world, operation, visibility))
    assert (ACTION[operation] in actions) is allowed(operation, caller, visibility), actions


@pytest.mark.parametrize("caller", CALLERS)
def test_catalog_lists_what_the_caller_may_pull(world, caller_for, caller):
    user = caller_for(caller, "private")
    listed = {repository.name for repository in policy.pullable_repositories(user)}
    expected = {world[v].name for v in VISIBILITY if allowed("pull", caller, v)}
    assert listed == expected


@pytest.mark.parametrize("caller", CALLERS)
def test_a_missing_organization_allows_nothing(world, caller_for, caller):
    """A push never creates an organization: nothing is allowed in one that does not exist, not even to a
    tenant administrator."""
    user = caller_for(caller, "private")
    assert policy.registry_actions(user, "nogroup", "web") == set()


@pytest.mark.parametrize("caller", CALLERS)
def test_a_private_repository_reads_as_a_missing_one_to_those_who_may_not_pull_it(world, caller_for, caller):
    """Spec section 6: whether a private repository exists is never told to someone who may not read it."""
    user = caller_for(caller, "private")
    existing = policy.registry_actions(user, "group", "team/web")
    if "pull" not in existing:
        assert existing == policy.registry_actions(user, "group", "team/missing") == set()


def test_invalid_names_allow_nothing(world, caller_for):
    user = caller_for("tenant admin", "private")
    assert policy.registry_actions(user, "Group", "web") == set()
    assert policy.registry_actions(user, "group", "Web") == set()
    assert policy.registry_actions(user, "manage", "web") == set()


def test_at_most_two_queries(world, caller_for, django_assert_max_num_queries):
    user = caller_for("namespace read + repo manage", "private")
    with django_assert_max_num_queries(2):
        assert policy.registry_actions(user, "group", "team/web") == {"pull", "push", "delete"}
    with django_assert_max_num_queries(2):
        assert policy.registry_actions(user, "group", "team/new") == {"pull"}
    with django_assert_max_num_queries(1):
        assert policy.registry_actions(user, "nogroup", "web") == set()


def test_anonymous_pull_is_one_query(world, settings, django_assert_num_queries):
    settings.SWR_ANONYMOUS_PULL = True
    with django_assert_num_queries(1):
        assert policy.registry_actions(None, "group", "pub") == {"pull"}
