"""Docker login credentials (spec section 11) and shared repositories (spec section 12) through the management API.

Shares: POST/GET/PATCH/DELETE ``/v2/manage/namespaces/{ns}/repositories/{repo}/access-domains[/{tenant}]``, the
v2 and v3 lists of shared repositories, and what a live share gives the other tenant (read, spec section 12);
bad input is a 4xx with the SWR body (spec section 1), and of two shares of one pair racing over real HTTP one is
201 and the other 409.
"""

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from swr import services
from swr.choices import PermissionLevel
from swr.models import AuditRecord, Repository, RepositoryPermission, RepositoryShare, TemporaryLogin, Tenant

from .helpers import OPERATOR, assert_swr_error, http_request, post, send

SHARES = "/v2/manage/namespaces/group/repositories/web/access-domains"
INVALID = "SVCSTG.SWR.4000014"
SHARE_EXISTS = "SVCSTG.SWR.4090083"
SHARE_NOT_FOUND = "SVCSTG.SWR.4040084"
OTHER_TENANT = "SVCSTG.SWR.4039001"
TOO_LOW = "SVCSTG.SWR.4039002"
REPOSITORY_NOT_FOUND = "SVCSTG.SWR.4040010"


def later(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def web(namespace, owner):
    """Private repository group/web of acme."""
    return services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)


@pytest.fixture
def dave(make_user, other_tenant):
    """dave, a plain user of globex (no grant anywhere)."""
    return make_user("dave", other_tenant)


@pytest.fixture
def share(web, other_tenant, owner):
    return services.share_create(repository=web, access_domain=other_tenant, creator=owner, actor=OPERATOR)


# --- section 12: share, list, show, change, stop ---------------------------------------------------------------


def test_share_then_list_show_change_stop(api, web, other_tenant, owner):
    deadline = later(days=30)
    body = {"access_domain": "globex", "permit": "read", "deadline": deadline, "description": "for globex"}
    answer = post(api, SHARES, body)
    assert (answer.status_code, answer.content) == (201, b"{}")
    stored = RepositoryShare.objects.get()
    assert (stored.repository, stored.access_domain, stored.permit, stored.creator) == (
        web,
        other_tenant,
        "read",
        owner,
    )
    assert stored.deadline.isoformat(timespec="milliseconds").replace("+00:00", "Z") == deadline

    listed = api.get(SHARES)
    assert listed.status_code == 200
    [row] = listed.json()
    assert set(row) == {
        "namespace", "repository", "access_domain", "permit", "deadline", "description", "creator_id",
        "creator_name", "created", "updated", "status",
    }  # fmt: skip
    assert row["namespace"] == "group"
    assert row["repository"] == "web"
    assert row["access_domain"] == "globex"
    assert (row["permit"], row["description"], row["status"]) == ("read", "for globex", True)
    assert (row["creator_id"], row["creator_name"]) == (str(owner.pk), "alice")
    assert row["deadline"].startswith(deadline[:19])
    assert row["deadline"].endswith("Z")
    assert row["created"].endswith("Z")

    shown = api.get(f"{SHARES}/globex").json()
    assert shown["exist"] is True
    assert shown["access_domain"] == "globex"
    assert shown["status"] is True
    assert api.get(f"{SHARES}/nobody").json() == {"exist": False}

    changed = send(api, "PATCH", f"{SHARES}/globex", {"deadline": "forever", "description": "changed"})
    assert (changed.status_code, changed.content) == (201, b"{}")
    stored.refresh_from_db()
    assert (stored.deadline, stored.description) == (None, "changed")
    assert api.get(f"{SHARES}/globex").json()["deadline"] == "forever"

    stopped = api.delete(f"{SHARES}/globex")
    assert stopped.status_code == 204
    assert not RepositoryShare.objects.exists()
    actions = list(AuditRecord.objects.filter(outcome="success").values_list("action", flat=True).order_by("id"))
    assert actions[-3:] == ["repository.share.create", "repository.share.update", "repository.share.delete"]


def test_deadline_defaults_to_forever_and_permit_to_read(api, web, make_tenant):
    make_tenant("initech")
    assert post(api, SHARES, {"access_domain": "initech"}).status_code == 201
    share = RepositoryShare.objects.get()
    assert (share.permit, share.deadline, share.description) == ("read", None, "")


def test_sharing_twice_is_409(api, share):
    assert_swr_error(post(api, SHARES, {"access_domain": "globex"}), 409, SHARE_EXISTS)
    assert RepositoryShare.objects.count() == 1


def test_changing_or_stopping_a_missing_share_is_404(api, web, other_tenant):
    assert_swr_error(send(api, "PATCH", f"{SHARES}/globex", {"description": "x"}), 404, SHARE_NOT_FOUND)
    assert_swr_error(api.delete(f"{SHARES}/globex"), 404, SHARE_NOT_FOUND)
    assert_swr_error(api.delete(f"{SHARES}/no-such-tenant"), 404, SHARE_NOT_FOUND)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-access-domain"),
        pytest.param({"access_domain": 7}, id="access-domain-number"),
        pytest.param({"access_domain": "nobody"}, id="unknown-tenant"),
        pytest.param({"access_domain": "acme"}, id="own-tenant"),
        pytest.param({"access_domain": "globex", "permit": "write"}, id="permit-write"),
        pytest.param({"access_domain": "globex", "permit": ["read"]}, id="permit-list"),
        pytest.param({"access_domain": "globex", "deadline": "tomorrow"}, id="deadline-text"),
        pytest.param({"access_domain": "globex", "deadline": "2020-01-01T00:00:00.000Z"}, id="deadline-past"),
        pytest.param({"access_domain": "globex", "deadline": "2099-01-01T00:00:00"}, id="deadline-no-zone"),
        pytest.param({"access_domain": "globex", "deadline": 4102444800}, id="deadline-number"),
        pytest.param({"access_domain": "globex", "deadline": None}, id="deadline-null"),
        pytest.param({"access_domain": "globex", "description": "x" * 1001}, id="description-1001"),
        pytest.param({"access_domain": "globex", "description": 5}, id="description-number"),
        pytest.param(["globex"], id="a-list"),
    ],
)
def test_bad_share_input_is_400(api, web, other_tenant, body):
    assert_swr_error(post(api, SHARES, body), 400, INVALID)
    assert not RepositoryShare.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"permit": "write"}, id="permit-write"),
        pytest.param({"deadline": "soon"}, id="deadline-text"),
        pytest.param({"deadline": "2001-01-01T00:00:00Z"}, id="deadline-past"),
        pytest.param({"description": "y" * 1001}, id="description-1001"),
    ],
)
def test_bad_change_is_400_and_changes_nothing(api, share, body):
    assert_swr_error(send(api, "PATCH", f"{SHARES}/globex", body), 400, INVALID)
    share.refresh_from_db()
    assert (share.permit, share.deadline, share.description) == ("read", None, "")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", SHARES, {"access_domain": "glo\x00bex"}),
        ("get", f"{SHARES}/glo%00bex", None),
        ("patch", f"{SHARES}/glo%00bex", {"description": "x"}),
        ("delete", f"{SHARES}/glo%00bex", None),
        ("delete", f"{SHARES}/{'g' * 300}", None),
        ("get", "/v3/manage/shared-repositories?shared_by=self&name=a%00b", None),
        ("get", "/v2/manage/shared-repositories?center=self&namespace=a%00b", None),
        ("get", "/v2/manage/shared-repositories?center=%00", None),
        ("post", "/v2/manage/utils/secret?projectname=a%00b", None),
    ],
)
def test_nul_and_overlong_values_answer_4xx(api, share, method, url, body):
    """PostgreSQL cannot take a NUL in a string: such a value is never sent to it (no 500)."""
    response = getattr(api, method)(url) if body is None else send(api, method.upper(), url, body)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.json()["error_code"].startswith("SVCSTG.SWR.4")


def test_malformed_json_is_400(api, web, other_tenant):
    assert_swr_error(post(api, SHARES, b"{not json"), 400, INVALID)


def test_only_private_repositories_are_shared(api, web, other_tenant):
    Repository.objects.filter(pk=web.pk).update(is_public=True)
    body = assert_swr_error(post(api, SHARES, {"access_domain": "globex"}), 400, INVALID)
    assert "private" in body["error_msg"]


def test_at_most_500_tenants_per_repository(api, web):
    tenants = Tenant.objects.bulk_create(Tenant(name=f"t{i}") for i in range(501))
    RepositoryShare.objects.bulk_create(RepositoryShare(repository=web, access_domain=t) for t in tenants[:499])
    assert post(api, SHARES, {"access_domain": "t499"}).status_code == 201  # the 500th
    body = assert_swr_error(post(api, SHARES, {"access_domain": "t500"}), 400, INVALID)
    assert "500 tenants" in body["error_msg"]
    assert RepositoryShare.objects.count() == 500
    assert api.delete(f"{SHARES}/t0").status_code == 204
    assert post(api, SHARES, {"access_domain": "t500"}).status_code == 201


@pytest.mark.parametrize("level", [PermissionLevel.READ, PermissionLevel.EDIT])
def test_sharing_needs_manage(client_for, bob, grant, namespace, web, other_tenant, level):
    grant(bob, namespace, level)
    client = client_for(bob)
    assert_swr_error(post(client, SHARES, {"access_domain": "globex"}), 403, TOO_LOW)
    assert client.get(SHARES).status_code == 200  # reading the shares needs read
    RepositoryPermission.objects.create(user=bob, repository=web, level=PermissionLevel.MANAGE)
    assert post(client, SHARES, {"access_domain": "globex"}).status_code == 201


def test_another_tenant_cannot_share_or_see_shares(client_for, dave, share):
    client = client_for(dave)
    assert_swr_error(post(client, SHARES, {"access_domain": "globex"}), 403, OTHER_TENANT)
    assert_swr_error(client.get(SHARES), 403, OTHER_TENANT)
    assert_swr_error(client.delete(f"{SHARES}/globex"), 403, OTHER_TENANT)
    assert RepositoryShare.objects.count() == 1


def test_a_missing_repository_reads_as_a_private_one_to_another_tenant(client_for, dave, web):
    client = client_for(dave)
    missing = assert_swr_error(client.get(SHARES.replace("/web/", "/nothing/")), 403, OTHER_TENANT)
    existing = assert_swr_error(client.get(SHARES), 403, OTHER_TENANT)
    assert missing["error_msg"] == existing["error_msg"]


def test_owner_sees_404_for_a_missing_repository(api, namespace):
    assert_swr_error(api.get(SHARES), 404, REPOSITORY_NOT_FOUND)


# --- what a share gives ----------------------------------------------------------------------------------------

DETAIL = "/v2/manage/namespaces/group/repos/web"


def test_a_live_share_gives_the_other_tenant_read_and_nothing_more(client_for, dave, share):
    client = client_for(dave)
    shown = client.get(DETAIL)
    assert shown.status_code == 200
    assert shown.json()["name"] == "web"
    assert_swr_error(send(client, "PATCH", DETAIL, {"is_public": True}), 403, OTHER_TENANT)
    assert_swr_error(client.delete(DETAIL), 403, OTHER_TENANT)
    assert_swr_error(client.get(f"{DETAIL}/access"), 403, OTHER_TENANT)
    assert [r["name"] for r in client.get("/v2/manage/repos").json()] == ["web"]


def test_an_expired_or_stopped_share_gives_nothing(client_for, dave, share, web, other_tenant):
    client = client_for(dave)
    assert client.get(DETAIL).status_code == 200
    RepositoryShare.objects.filter(pk=share.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert_swr_error(client.get(DETAIL), 403, OTHER_TENANT)
    assert client.get("/v2/manage/repos").json() == []
    RepositoryShare.objects.filter(pk=share.pk).update(deadline=None)
    assert client.get(DETAIL).status_code == 200
    services.share_delete(repository=web, access_domain=other_tenant, actor=OPERATOR)
    assert_swr_error(client.get(DETAIL), 403, OTHER_TENANT)


def test_a_share_with_one_tenant_gives_nothing_to_a_third(client_for, make_tenant, make_user, share):
    stranger = make_user("erin", make_tenant("initech"))
    assert_swr_error(client_for(stranger).get(DETAIL), 403, OTHER_TENANT)


# --- the lists of shared repositories --------------------------------------------------------------------------


def test_v2_shared_repository_lists(api, client_for, dave, share, namespace, owner):
    services.repository_create(namespace=namespace, name="unshared", is_public=False, creator=owner, actor=OPERATOR)
    mine = api.get("/v2/manage/shared-repositories", {"center": "self"})
    assert mine.status_code == 200
    assert mine.headers["Content-Range"] == "0-1/1"
    [row] = mine.json()
    assert (row["namespace"], row["name"], row["is_public"], row["domain_name"]) == ("group", "web", False, "acme")
    assert api.get("/v2/manage/shared-repositories", {"center": "thirdparty"}).json() == []

    theirs = client_for(dave).get("/v2/manage/shared-repositories", {"filter": "center::thirdparty|name::we"})
    assert [r["name"] for r in theirs.json()] == ["web"]
    assert theirs.headers["Content-Range"] == "0-1/1"
    assert client_for(dave).get("/v2/manage/shared-repositories", {"center": "self"}).json() == []
    none = client_for(dave).get("/v2/manage/shared-repositories", {"center": "thirdparty", "namespace": "zzz"})
    assert none.json() == []
    assert none.headers["Content-Range"] == "0-0/0"


def test_v2_thirdparty_list_holds_live_shares_only(client_for, dave, share, web, owner, api):
    """The v2 list is section 5's full answer (tags, counts): an expired share gives nothing, so its repository
    leaves the other tenant's list at once; the owner's list (center=self) keeps it."""
    client = client_for(dave)
    RepositoryShare.objects.filter(pk=share.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    expired = client.get("/v2/manage/shared-repositories", {"center": "thirdparty"})
    assert expired.json() == []
    assert expired.headers["Content-Range"] == "0-0/0"
    assert [r["name"] for r in api.get("/v2/manage/shared-repositories", {"center": "self"}).json()] == ["web"]
    RepositoryShare.objects.filter(pk=share.pk).update(deadline=None)
    assert [r["name"] for r in client.get("/v2/manage/shared-repositories", {"center": "thirdparty"}).json()] == ["web"]


@pytest.mark.parametrize(
    ("url", "param"), [("/v2/manage/shared-repositories", "center"), ("/v3/manage/shared-repositories", "shared_by")]
)
def test_a_missing_list_side_is_named_in_the_message(api, url, param):
    response = api.get(url)
    assert_swr_error(response, 400, INVALID)
    assert response.json()["error_msg"].startswith(f"Missing {param}: self")
    assert "None" not in response.json()["error_msg"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"center": "everyone"},
        {"center": "self", "limit": "0"},
        {"center": "self", "order_column": "size"},
        {"center": "self", "offset": "-1"},
    ],
)
def test_v2_shared_list_bad_query_is_400(api, query):
    assert_swr_error(api.get("/v2/manage/shared-repositories", query), 400, INVALID)


def test_v3_shared_repository_list_pages_by_marker(api, client_for, dave, namespace, owner, other_tenant):
    names = [f"r{i}" for i in range(5)]
    for name in names:
        repository = services.repository_create(
            namespace=namespace, name=name, is_public=False, creator=owner, actor=OPERATOR
        )
        services.share_create(repository=repository, access_domain=other_tenant, creator=owner, actor=OPERATOR)
    RepositoryShare.objects.filter(repository__name="r4").update(deadline=timezone.now() - timedelta(seconds=1))
    client = client_for(dave)
    seen, marker = [], None
    while True:
        query = {"shared_by": "thirdparty", "limit": "2", **({"marker": marker} if marker else {})}
        answer = client.get("/v3/manage/shared-repositories", query)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        seen += body["repos"]
        if "nextMarker" not in body:
            break
        marker = str(body["nextMarker"])
        assert isinstance(body["nextMarker"], int)
    assert [r["name"] for r in seen] == names
    assert set(seen[0]) == {
        "id", "name", "category", "description", "size", "is_public", "num_images", "num_download", "created_at",
        "updated_at", "domain_name", "namespace_name", "status",
    }  # fmt: skip
    assert [r["status"] for r in seen] == [True, True, True, True, False]
    live = client.get("/v3/manage/shared-repositories", {"shared_by": "thirdparty", "status": "true"}).json()
    assert [r["name"] for r in live["repos"]] == names[:4]
    mine = api.get("/v3/manage/shared-repositories", {"shared_by": "self", "name": "r1"}).json()
    assert [r["name"] for r in mine["repos"]] == ["r1"]
    assert "nextMarker" not in mine


@pytest.mark.parametrize(
    "query",
    [{}, {"shared_by": "both"}, {"shared_by": "self", "marker": "x"}, {"shared_by": "self", "status": "maybe"}],
)
def test_v3_shared_list_bad_query_is_400(api, query):
    assert_swr_error(api.get("/v3/manage/shared-repositories", query), 400, INVALID)


# --- section 11: docker login credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "user_prefix", "expire_header"),
    [
        ("/v2/manage/utils/secret?projectname=cn-north-4", "cn-north-4", "X-Swr-Expireat"),
        ("/v2/manage/utils/authorizationtoken", "bearertoken", "x-swr-expireat"),
    ],
)
def test_docker_login_credentials(api, owner, url, user_prefix, expire_header, settings):
    settings.SWR_REGISTRY_HOST = "swr.example.com"
    before = timezone.now()
    answer = api.post(url)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert list(body) == ["auths"]
    assert list(body["auths"]) == ["swr.example.com"]
    username, password = base64.b64decode(body["auths"]["swr.example.com"]["auth"]).decode().split(":", 1)
    prefix, identifier = username.split("@")
    assert prefix == user_prefix
    assert answer.headers["X-Swr-Dockerlogin"] == f"docker login -u {username} -p {password} swr.example.com"
    expires = datetime.fromisoformat(answer.headers[expire_header].replace("Z", "+00:00"))
    assert answer.headers[expire_header].endswith("Z")
    assert timedelta(seconds=86399) <= expires - before <= timedelta(seconds=86401)
    login = TemporaryLogin.objects.get(identifier=identifier)
    assert login.user == owner
    assert login.secret_hash == TemporaryLogin.hash_secret(password)
    assert password not in json.dumps(list(TemporaryLogin.objects.values()), default=str)


def test_secret_duration_and_default_project(api, owner):
    answer = api.post("/v2/manage/utils/secret?duration_seconds=900")
    assert answer.status_code == 200
    username = answer.headers["X-Swr-Dockerlogin"].split()[3]
    assert username.startswith("acme@")
    login = TemporaryLogin.objects.get()
    assert timedelta(seconds=890) < login.expires_at - timezone.now() <= timedelta(seconds=900)


@pytest.mark.parametrize(
    "query",
    [
        "duration_seconds=899",
        "duration_seconds=86401",
        "duration_seconds=abc",
        "duration_seconds=%EF%BC%99%EF%BC%90%EF%BC%90",
        "projectname=a@b",
        "projectname=a:b",
        "projectname=bearertoken",
        "projectname=" + "p" * 65,
    ],
)
def test_bad_secret_query_is_400(api, query):
    assert_swr_error(api.post(f"/v2/manage/utils/secret?{query}"), 400, INVALID)
    assert not TemporaryLogin.objects.exists()


def test_credentials_need_authentication(db):
    from rest_framework.test import APIClient

    assert_swr_error(APIClient().post("/v2/manage/utils/secret"), 401, "SVCSTG.SWR.4010000")
    assert_swr_error(APIClient().post("/v2/manage/utils/authorizationtoken"), 401, "SVCSTG.SWR.4010000")


def test_credentials_answer_only_post(api):
    assert_swr_error(api.get("/v2/manage/utils/secret"), 405, "SVCSTG.SWR.4050000")


# --- OpenAPI ---------------------------------------------------------------------------------------------------


def test_openapi_documents_the_routes(api):
    paths = api.get("/openapi.json").json()["paths"]
    base = "/v2/manage/namespaces/{namespace}/repositories/{repository}/access-domains"
    assert set(paths[base]) >= {"get", "post"}
    assert set(paths[base + "/{access_domain}"]) >= {"get", "patch", "delete"}
    assert "post" in paths["/v2/manage/utils/secret"]
    assert "post" in paths["/v2/manage/utils/authorizationtoken"]
    headers = paths["/v2/manage/utils/secret"]["post"]["responses"]["200"]["headers"]
    assert {"X-Swr-Dockerlogin", "X-Swr-Expireat"} <= set(headers)
    assert "x-swr-expireat" in paths["/v2/manage/utils/authorizationtoken"]["post"]["responses"]["200"]["headers"]
    v2 = paths["/v2/manage/shared-repositories"]["get"]
    assert "center" in [p["name"] for p in v2["parameters"]]
    v3 = paths["/v3/manage/shared-repositories"]["get"]
    assert {"shared_by", "marker", "limit", "status"} <= {p["name"] for p in v3["parameters"]}
    assert "409" in paths[base]["post"]["responses"]
    document = api.get("/openapi.json").json()
    show = paths[base + "/{access_domain}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    shown = document["components"]["schemas"][show["$ref"].rsplit("/", 1)[1]]
    assert shown["required"] == ["exist"]  # {"exist": false} alone when there is no share
    assert {"access_domain", "deadline", "status"} <= set(shown["properties"])


# --- races over real HTTP --------------------------------------------------------------------------------------


def share_over_http(server, token):
    return http_request(f"{server}{SHARES}", "POST", body={"access_domain": "globex"}, token=token)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_two_shares_of_one_pair_at_once_one_201_one_409(server, token, web, other_tenant, make_tenant):
    for round_number in range(5):
        RepositoryShare.objects.all().delete()
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda _: share_over_http(server, token), range(2)))
        statuses = sorted(a.status for a in answers)
        assert statuses == [201, 409], (round_number, [a.body[:300] for a in answers])
        conflict = next(a for a in answers if a.status == 409)
        assert json.loads(conflict.body)["error_code"] == SHARE_EXISTS
        assert RepositoryShare.objects.count() == 1


def stop_over_http(server, token):
    return http_request(f"{server}{SHARES}/globex", "DELETE", token=token)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_two_stops_of_one_share_at_once_one_204_one_404(server, token, web, other_tenant, owner):
    for round_number in range(5):
        services.share_create(repository=web, access_domain=other_tenant, creator=owner, actor=OPERATOR)
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda _: stop_over_http(server, token), range(2)))
        assert sorted(a.status for a in answers) == [204, 404], (round_number, [a.body[:300] for a in answers])
        missing = next(a for a in answers if a.status == 404)
        assert json.loads(missing.body)["error_code"] == SHARE_NOT_FOUND
        assert not RepositoryShare.objects.exists()
