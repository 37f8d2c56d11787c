"""Whether a private repository exists is never told to someone who may not read it (spec section 6).

The example of issue 11: for a user of the same tenant without read permission, the 403 named the
repository only when it existed ("... or 1 on repository 'secret'"), and for a missing name asked for
the read permission on the organization alone. Every route with a repository in its URL, with each of
its methods, must refuse an existing private name and a missing one alike: same status, same code,
same message (the name, taken from the URL, is the only difference).
"""

import pytest

from swr import services
from swr.models import NamespacePermission, RepositoryPermission

from .helpers import OPERATOR, assert_swr_error, grant_entry, send

pytestmark = pytest.mark.django_db

NS = "/v2/manage/namespaces/group"

# Every route with a repository in its URL, each method, with a body that would be valid.
ROUTES = [
    ("get", "{repo}", None),
    ("patch", "{repo}", {"is_public": True}),
    ("delete", "{repo}", None),
    ("get", "{repo}/access", None),
    ("post", "{repo}/access", "GRANT"),
    ("patch", "{repo}/access", "GRANT"),
    ("delete", "{repo}/access", "USER_IDS"),
]

# Callers who may not read the private repository 'team/secret' of organization 'group'.
CALLERS = {
    "same tenant, no grant": ("same", False, None),
    "same tenant, a grant on another repository": ("same", False, "other"),
    "other tenant": ("other", False, None),
    "other tenant's administrator": ("other", True, None),
}

# An existing private name; a missing name of the same shape; a name the naming rule refuses (so cannot exist).
NAMES = {"existing": "team/secret", "missing": "team/absent", "invalid": "Team/Secret"}


@pytest.fixture
def scene(tenant, other_tenant, make_user):
    owner = make_user("owner", tenant)
    group = services.namespace_create(name="group", tenant=tenant, creator=owner, actor=OPERATOR)
    secret = services.repository_create(
        namespace=group, name="team/secret", is_public=False, creator=owner, actor=OPERATOR
    )
    other = services.repository_create(namespace=group, name="other", is_public=False, creator=owner, actor=OPERATOR)
    bystander = make_user("bystander", tenant)
    # Grants on the secret repository, so that the /access routes would have something to change.
    RepositoryPermission.objects.create(repository=secret, user=bystander, level=1)
    return {"tenant": tenant, "other_tenant": other_tenant, "other": other, "bystander": bystander}


def caller_client(scene, make_user, client_for, name):
    which, is_admin, grant_on = CALLERS[name]
    user = make_user("caller", scene["tenant"] if which == "same" else scene["other_tenant"], is_tenant_admin=is_admin)
    if grant_on == "other":
        RepositoryPermission.objects.create(repository=scene["other"], user=user, level=7)
    return client_for(user)


def call(client, scene, method, path, body, name):
    url = f"{NS}/repos/" + path.format(repo=name.replace("/", "$"))
    if body == "GRANT":
        body = [grant_entry(scene["bystander"])]
    elif body == "USER_IDS":
        body = [str(scene["bystander"].pk)]
    if body is None:
        return getattr(client, method)(url)
    return send(client, method, url, body)


def answer(response, name: str) -> tuple:
    body = response.json()
    return response.status_code, body["error_code"], body["error_msg"].replace(repr(name), "<name>"), body["details"]


CASES = [(route, caller) for route in ROUTES for caller in CALLERS]


@pytest.mark.parametrize(("route", "caller"), CASES, ids=[f"{r[0].upper()} {r[1]} | {c}" for r, c in CASES])
def test_existing_private_and_missing_names_are_refused_alike(scene, make_user, client_for, route, caller):
    client = caller_client(scene, make_user, client_for, caller)
    method, path, body = route
    answers = {kind: answer(call(client, scene, method, path, body, name), name) for kind, name in NAMES.items()}
    assert answers["existing"][0] == 403, answers
    assert answers["missing"] == answers["existing"], answers
    assert answers["invalid"] == answers["existing"], answers
    assert "exist" not in answers["existing"][2]


def test_the_example_of_the_issue(scene, make_user, client_for):
    """GET of an existing and a missing private name by a user of the same tenant without a grant."""
    services.repository_create(namespace=scene["other"].namespace, name="secret", is_public=False, actor=OPERATOR)
    client = caller_client(scene, make_user, client_for, "same tenant, no grant")
    for name in ("secret", "absent"):
        body = assert_swr_error(client.get(f"{NS}/repos/{name}"), 403, "SVCSTG.SWR.4039002")
        assert body["error_msg"] == (
            f"This needs the read permission (1) on organization 'group' or 1 on repository {name!r}; you have 0."
        )


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m.upper()} {p}" for m, p, _ in ROUTES])
def test_those_who_may_read_the_organization_are_told_a_name_is_missing(
    scene, make_user, client_for, method, path, body
):
    """A reader of the organization can list its repositories: a missing name is 404 for them."""
    user = make_user("reader", scene["tenant"])
    NamespacePermission.objects.create(namespace=scene["other"].namespace, user=user, level=1)
    response = call(client_for(user), scene, method, path, body, "team/absent")
    assert_swr_error(response, 404, "SVCSTG.SWR.4040010")


def test_a_public_repository_is_no_secret(scene, make_user, client_for):
    """Public repositories are readable by everybody: a refusal of a change may name them."""
    services.repository_create(namespace=scene["other"].namespace, name="pub", is_public=True, actor=OPERATOR)
    client = caller_client(scene, make_user, client_for, "same tenant, no grant")
    assert client.get(f"{NS}/repos/pub").status_code == 200
    body = assert_swr_error(client.delete(f"{NS}/repos/pub"), 403, "SVCSTG.SWR.4039002")
    assert "'pub'" in body["error_msg"]


def test_a_grant_below_the_need_is_shown_in_the_refusal(scene, make_user, client_for):
    """Someone who may read the repository learns what they hold on it, beside what they hold on the organization."""
    user = make_user("reader", scene["tenant"])
    RepositoryPermission.objects.create(repository=scene["other"], user=user, level=1)
    body = assert_swr_error(client_for(user).delete(f"{NS}/repos/other"), 403, "SVCSTG.SWR.4039002")
    assert body["error_msg"] == (
        "This needs the manage permission (7) on organization 'group' or 7 on repository 'other'; "
        "you have 0 on the organization and 1 on the repository."
    )
