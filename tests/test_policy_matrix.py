"""The cross-tenant matrix: every endpoint against every kind of caller, expected answers derived from the
permission table of spec section 6 (written out again here, from the spec, not imported from the code).

With section 12's shares: a live share of repository "web" with the caller's tenant gives its users read (1)
on it, and nothing more; an expired share, or a share with another tenant, gives nothing. Sharing (and
changing or stopping a share) needs manage (7) on the namespace or the repository."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from swr import services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, Repository, RepositoryPermission, RepositoryShare, Tenant

from .helpers import OPERATOR, grant_entry, send

pytestmark = pytest.mark.django_db

# Spec section 6: what each operation needs. (level on the namespace, level on the repository itself or None)
SPEC_TABLE = {
    "read namespace": (1, None),
    "read repo": (1, 1),
    "create repo": (3, None),
    "update repo": (3, 7),
    "delete repo": (7, 7),
    "delete namespace": (7, None),
    "read namespace grants": (1, None),
    "manage namespace grants": (7, None),
    "read repo grants": (1, 1),
    "manage repo grants": (3, 7),
    # Spec section 12: reading a repository's shares is reading the repository's settings; sharing needs 7.
    "read repo shares": (1, 1),
    "manage repo shares": (7, 7),
}

# Callers: their tenant ("same" or "other") and their grants on organization "group" and on its repository "web".
CALLERS = {
    "anonymous": None,
    "other tenant admin": ("other", True, 0, 0),
    "other tenant user": ("other", False, 0, 0),
    "no grant": ("same", False, 0, 0),
    "namespace read": ("same", False, 1, 0),
    "namespace edit": ("same", False, 3, 0),
    "namespace manage": ("same", False, 7, 0),
    "tenant admin": ("same", True, 0, 0),
    "repo read": ("same", False, 0, 1),
    "repo edit": ("same", False, 0, 3),
    "repo manage": ("same", False, 0, 7),
    "namespace read + repo manage": ("same", False, 1, 7),
    # Spec section 12: the last field is the state of a share of "web" with the caller's tenant.
    "other tenant user, live share": ("other", False, 0, 0, "live"),
    "other tenant admin, live share": ("other", True, 0, 0, "live"),
    "other tenant user, expired share": ("other", False, 0, 0, "expired"),
    "third tenant user, share with other": ("third", False, 0, 0, "none"),
}

NS = "/v2/manage/namespaces/group"
# (operation, method, url, body, status when allowed)
ENDPOINTS = {
    "show namespace": ("read namespace", "get", NS, None, 200),
    "delete namespace": ("delete namespace", "delete", NS, None, 406),  # it holds repositories: allowed means 406
    "create repo": ("create repo", "post", f"{NS}/repos", {"repository": "new", "is_public": False}, 201),
    "show repo": ("read repo", "get", f"{NS}/repos/web", None, 200),
    "update repo": ("update repo", "patch", f"{NS}/repos/web", {"is_public": True}, 201),
    "delete repo": ("delete repo", "delete", f"{NS}/repos/web", None, 204),
    "show namespace grants": ("read namespace grants", "get", f"{NS}/access", None, 200),
    "grant on namespace": ("manage namespace grants", "post", f"{NS}/access", "GRANT", 201),
    "show repo grants": ("read repo grants", "get", f"{NS}/repos/web/access", None, 200),
    "grant on repo": ("manage repo grants", "post", f"{NS}/repos/web/access", "GRANT", 201),
    "show public repo": ("public", "get", f"{NS}/repos/pub", None, 200),
    "list shares": ("read repo shares", "get", f"{NS}/repositories/web/access-domains", None, 200),
    "share repo": (
        "manage repo shares",
        "post",
        f"{NS}/repositories/web/access-domains",
        {"access_domain": "hooli"},
        201,
    ),
    "change share": (
        "manage repo shares",
        "patch",
        f"{NS}/repositories/web/access-domains/umbrella",
        {"description": "x"},
        201,
    ),
    "stop share": ("manage repo shares", "delete", f"{NS}/repositories/web/access-domains/umbrella", None, 204),
}


def expected_status(endpoint: str, caller: str) -> int:
    operation, _, _, _, allowed_status = ENDPOINTS[endpoint]
    spec = CALLERS[caller]
    if spec is None:
        return 401
    tenant, is_admin, ns_level, repo_level, share = (*spec, "none")[:5]
    if operation == "public":  # spec: public repositories are readable by any authenticated user of any tenant
        return allowed_status
    if tenant == "other" and share == "live" and operation == "read repo":  # spec section 12: read, no more
        return allowed_status
    if tenant != "same":
        return 403
    on_namespace, on_repository = SPEC_TABLE[operation]
    level = 7 if is_admin else ns_level
    if level >= on_namespace or (on_repository is not None and repo_level >= on_repository):
        return allowed_status
    return 403


CASES = [(endpoint, caller) for endpoint in ENDPOINTS for caller in CALLERS]


@pytest.fixture
def scene(tenant, other_tenant, make_user):
    owner = make_user("owner", tenant)
    group = services.namespace_create(name="group", tenant=tenant, creator=owner, actor=OPERATOR)
    web = services.repository_create(namespace=group, name="web", is_public=False, creator=owner, actor=OPERATOR)
    services.repository_create(namespace=group, name="pub", is_public=True, creator=owner, actor=OPERATOR)
    bystander = make_user("bystander", tenant)
    umbrella = Tenant.objects.create(name="umbrella")
    Tenant.objects.create(name="hooli")
    services.share_create(repository=web, access_domain=umbrella, creator=owner, actor=OPERATOR)
    return {"group": group, "web": web, "bystander": bystander}


def make_caller(name, scene, tenant, other_tenant, make_user):
    spec = CALLERS[name]
    if spec is None:
        return APIClient()
    which, is_admin, ns_level, repo_level, share = (*spec, "none")[:5]
    caller_tenant = {"same": tenant, "other": other_tenant}.get(which) or Tenant.objects.create(name="initech")
    user = make_user("caller", caller_tenant, is_tenant_admin=is_admin)
    if share != "none" or which == "third":
        deadline = timezone.now() + timedelta(days=1 if share != "expired" else -1)
        RepositoryShare.objects.create(repository=scene["web"], access_domain=other_tenant, deadline=deadline)
    if ns_level:
        NamespacePermission.objects.create(namespace=scene["group"], user=user, level=ns_level)
    if repo_level:
        RepositoryPermission.objects.create(repository=scene["web"], user=user, level=repo_level)
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=services.token_issue(user=user, actor=OPERATOR)[1])
    return client


@pytest.mark.parametrize(("endpoint", "caller"), CASES, ids=[f"{e} | {c}" for e, c in CASES])
def test_matrix(scene, tenant, other_tenant, make_user, endpoint, caller):
    client = make_caller(caller, scene, tenant, other_tenant, make_user)
    _, method, url, body, _ = ENDPOINTS[endpoint]
    if body == "GRANT":
        body = [grant_entry(scene["bystander"])]
    response = getattr(client, method)(url) if body is None else send(client, method, url, body)
    expected = expected_status(endpoint, caller)
    assert response.status_code == expected, response.content
    if expected == 403:
        code = response.json()["error_code"]
        assert code == ("SVCSTG.SWR.4039001" if CALLERS[caller][0] != "same" else "SVCSTG.SWR.4039002")


def test_matrix_covers_every_operation_of_the_table():
    assert {ENDPOINTS[e][0] for e in ENDPOINTS} - {"public"} == set(SPEC_TABLE)


@pytest.mark.parametrize("caller", [c for c in CALLERS if CALLERS[c] is not None])
def test_listing_shows_no_private_repository_of_another_tenant(scene, tenant, other_tenant, make_user, caller):
    """GET /v2/manage/repos: another tenant's private repositories never appear, whatever the caller holds."""
    client = make_caller(caller, scene, tenant, other_tenant, make_user)
    theirs = services.namespace_create(name="theirs", tenant=other_tenant, actor=OPERATOR)
    services.repository_create(namespace=theirs, name="secret", is_public=False, actor=OPERATOR)
    names = {(item["namespace"], item["name"]) for item in client.get("/v2/manage/repos?limit=1000").json()}
    which, is_admin, ns_level, repo_level, share = (*CALLERS[caller], "none")[:5]
    # "theirs" belongs to the other tenant: only that tenant's administrator may see its private repository.
    assert (("theirs", "secret") in names) == (which == "other" and is_admin)
    # "web" is listed to whoever reads it: by a grant in its tenant, or a live share with the caller's tenant.
    readers = which == "same" and (is_admin or ns_level >= 1 or repo_level >= 1)
    assert (("group", "web") in names) == (readers or (which == "other" and share == "live"))
    assert ("group", "pub") in names


def test_repository_grant_does_not_reach_other_repositories(scene, tenant, make_user):
    user = make_user("caller", tenant)
    RepositoryPermission.objects.create(repository=scene["web"], user=user, level=PermissionLevel.MANAGE)
    other = Repository.objects.create(namespace=scene["group"], name="other", is_public=False)
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=services.token_issue(user=user, actor=OPERATOR)[1])
    assert client.get(f"{NS}/repos/web").status_code == 200
    assert client.get(f"{NS}/repos/{other.name}").status_code == 403
    assert client.delete(f"{NS}/repos/{other.name}").status_code == 403
