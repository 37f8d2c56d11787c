"""POST /v2/manage/namespaces (spec section 4, create)."""

import pytest
from rest_framework.test import APIClient

from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, User

from .helpers import OPERATOR, assert_swr_error, post
from .test_names import NAMESPACE_CASES, short_id

pytestmark = pytest.mark.django_db

URL = "/v2/manage/namespaces"


def post_json(client, body):
    return post(client, URL, body)


def test_create(api, owner, tenant):
    response = post_json(api, {"namespace": "group"})
    assert response.status_code == 201
    assert response.json() == {}
    namespace = Namespace.objects.get()
    assert (namespace.name, namespace.tenant, namespace.creator) == ("group", tenant, owner)


def test_creator_gets_manage(api, owner):
    post_json(api, {"namespace": "group"})
    permission = NamespacePermission.objects.get()
    assert (permission.user, permission.level) == (owner, PermissionLevel.MANAGE)


def test_creator_can_then_create_repositories(api):
    assert post_json(api, {"namespace": "group"}).status_code == 201
    response = post(api, "/v2/manage/namespaces/group/repos", {"repository": "busybox", "is_public": True})
    assert response.status_code == 201


def test_form_body(api):
    response = api.post(URL, data={"namespace": "group"}, format="multipart")
    assert response.status_code == 201
    response = api.post(URL, data="namespace=team", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201
    assert set(Namespace.objects.values_list("name", flat=True)) == {"group", "team"}


def test_duplicate_in_same_tenant(api):
    assert post_json(api, {"namespace": "group"}).status_code == 201
    body = assert_swr_error(post_json(api, {"namespace": "group"}), 409, "SVCSTG.SWR.4090060")
    assert "group" in body["error_msg"]


def test_name_is_unique_across_tenants(api, make_user, other_tenant, client_for):
    assert post_json(api, {"namespace": "group"}).status_code == 201
    stranger = client_for(make_user("mallory", other_tenant))
    assert_swr_error(post_json(stranger, {"namespace": "group"}), 409, "SVCSTG.SWR.4090060")
    assert Namespace.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "fragment"),
    [case for case in NAMESPACE_CASES if case[1]],
    ids=[short_id(name) for name, fragment in NAMESPACE_CASES if fragment],
)
def test_invalid_name(api, value, fragment):
    body = assert_swr_error(post_json(api, {"namespace": value}), 400, "SVCSTG.SWR.4001028")
    assert body["error_msg"].startswith("Invalid organization name: ")
    assert fragment in body["error_msg"]
    assert body["details"] == [{"field": "namespace", "error_msg": body["error_msg"]}]
    assert not Namespace.objects.exists()


@pytest.mark.parametrize("value", [name for name, fragment in NAMESPACE_CASES if fragment is None], ids=short_id)
def test_valid_name(api, value):
    assert post_json(api, {"namespace": value}).status_code == 201
    assert Namespace.objects.get().name == value


@pytest.mark.parametrize("body", [{}, {"name": "group"}, {"namespace": None}, {"namespace": ["a"]}])
def test_missing_or_mistyped_namespace(api, body):
    body = assert_swr_error(post_json(api, body), 400, "SVCSTG.SWR.4000014")
    assert body["details"][0]["field"] == "namespace"


def test_without_token():
    assert_swr_error(post_json(APIClient(), {"namespace": "group"}), 401, "SVCSTG.SWR.4010000")


def test_user_without_tenant_cannot_create(client_for):
    staff = User.objects.create_user(username="staff", is_staff=True)
    assert_swr_error(post_json(client_for(staff), {"namespace": "group"}), 403, "SVCSTG.SWR.4039002")
    assert not Namespace.objects.exists()


def test_malformed_json(api):
    response = post(api, URL, "{")
    assert_swr_error(response, 400, "SVCSTG.SWR.4000014")


def test_put_is_not_allowed(api):
    assert_swr_error(api.put(URL), 405, "SVCSTG.SWR.4050000")


class TestList:
    @pytest.fixture
    def spread(self, tenant, other_tenant, owner, make_user, grant):
        """alice created group and tools; bob (same tenant) reads tools; zoe of globex owns theirs."""
        from swr import services

        group = services.namespace_create(name="group", tenant=tenant, creator=owner, actor=OPERATOR)
        tools = services.namespace_create(name="tools", tenant=tenant, creator=owner, actor=OPERATOR)
        services.namespace_create(name="hidden", tenant=tenant, actor=OPERATOR)
        zoe = make_user("zoe", other_tenant)
        services.namespace_create(name="theirs", tenant=other_tenant, creator=zoe, actor=OPERATOR)
        bob = make_user("bob", tenant)
        grant(bob, tools, PermissionLevel.READ)
        return {"group": group, "tools": tools, "bob": bob}

    def test_lists_namespaces_with_a_grant_and_the_level(self, api, spread):
        response = api.get(URL)
        assert response.status_code == 200
        assert response.json() == {
            "namespaces": [
                {"id": spread["group"].pk, "name": "group", "creator_name": "alice", "auth": 7},
                {"id": spread["tools"].pk, "name": "tools", "creator_name": "alice", "auth": 7},
            ]
        }

    def test_reader_sees_level_1(self, spread, client_for):
        body = client_for(spread["bob"]).get(URL).json()
        assert body == {"namespaces": [{"id": spread["tools"].pk, "name": "tools", "creator_name": "alice", "auth": 1}]}

    def test_tenant_administrator_sees_every_namespace_of_the_tenant(self, spread, make_user, tenant, client_for):
        root = make_user("root", tenant, is_tenant_admin=True)
        body = client_for(root).get(URL).json()
        assert [(n["name"], n["auth"]) for n in body["namespaces"]] == [("group", 7), ("hidden", 7), ("tools", 7)]

    @pytest.mark.parametrize(
        "query", ["namespace=too", "filter=namespace::too", "filter=namespace::TOO|mode::visible", "namespace=ool"]
    )
    def test_name_filter(self, api, spread, query):
        assert [n["name"] for n in api.get(f"{URL}?{query}").json()["namespaces"]] == ["tools"]

    @pytest.mark.parametrize("query", ["filter=mode::everything", "mode=x", "filter=namespace"])
    def test_invalid_filter(self, api, spread, query):
        assert_swr_error(api.get(f"{URL}?{query}"), 400, "SVCSTG.SWR.4000014")

    def test_query_count_does_not_grow_with_namespaces(self, api, owner, tenant):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from swr import services

        counts = []
        for batch in range(2):
            for i in range(5):
                services.namespace_create(name=f"ns{batch}-{i}", tenant=tenant, creator=owner, actor=OPERATOR)
            with CaptureQueriesContext(connection) as queries:
                assert api.get(URL).status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1] <= 2


class TestRetrieve:
    def test_show(self, api, namespace):
        response = api.get(f"{URL}/group")
        assert response.status_code == 200
        assert response.json() == {"id": namespace.pk, "name": "group", "creator_name": "alice", "auth": 7}

    def test_reader(self, namespace, make_user, tenant, client_for, grant):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.READ)
        assert client_for(bob).get(f"{URL}/group").json()["auth"] == 1

    def test_no_grant(self, namespace, make_user, tenant, client_for):
        assert_swr_error(client_for(make_user("bob", tenant)).get(f"{URL}/group"), 403, "SVCSTG.SWR.4039002")

    def test_other_tenant(self, namespace, make_user, other_tenant, client_for):
        zoe = make_user("zoe", other_tenant, is_tenant_admin=True)
        assert_swr_error(client_for(zoe).get(f"{URL}/group"), 403, "SVCSTG.SWR.4039001")

    def test_missing(self, api):
        assert_swr_error(api.get(f"{URL}/nowhere"), 404, "SVCSTG.SWR.4040058")


class TestDelete:
    def test_delete_empty_namespace(self, api, namespace):
        response = api.delete(f"{URL}/group")
        assert response.status_code == 204
        assert response.content == b""
        assert not Namespace.objects.exists()
        assert not NamespacePermission.objects.exists()

    def test_not_while_it_holds_repositories(self, api, namespace):
        from swr.models import Repository

        Repository.objects.create(namespace=namespace, name="web", is_public=True)
        body = assert_swr_error(api.delete(f"{URL}/group"), 406, "SVCSTG.SWR.4060074")
        assert "group" in body["error_msg"]
        assert Namespace.objects.exists()

    @pytest.mark.parametrize("level", [PermissionLevel.READ, PermissionLevel.EDIT])
    def test_needs_manage(self, namespace, make_user, tenant, client_for, grant, level):
        bob = make_user("bob", tenant)
        grant(bob, namespace, level)
        assert_swr_error(client_for(bob).delete(f"{URL}/group"), 403, "SVCSTG.SWR.4039002")
        assert Namespace.objects.exists()

    def test_tenant_administrator_may_delete(self, namespace, make_user, tenant, client_for):
        root = make_user("root", tenant, is_tenant_admin=True)
        assert client_for(root).delete(f"{URL}/group").status_code == 204

    def test_other_tenant(self, namespace, make_user, other_tenant, client_for):
        zoe = make_user("zoe", other_tenant, is_tenant_admin=True)
        assert_swr_error(client_for(zoe).delete(f"{URL}/group"), 403, "SVCSTG.SWR.4039001")

    def test_missing(self, api):
        assert_swr_error(api.delete(f"{URL}/nowhere"), 404, "SVCSTG.SWR.4040058")

    def test_name_is_free_again_after_delete(self, api, namespace):
        assert api.delete(f"{URL}/group").status_code == 204
        assert post_json(api, {"namespace": "group"}).status_code == 201
