"""POST /v2/manage/namespaces (spec section 4, create)."""

import json

import pytest
from rest_framework.test import APIClient

from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, User

from .helpers import assert_swr_error
from .test_names import NAMESPACE_CASES, short_id

pytestmark = pytest.mark.django_db

URL = "/v2/manage/namespaces"


def post_json(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


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
    response = api.post(
        "/v2/manage/namespaces/group/repos",
        data=json.dumps({"repository": "busybox", "is_public": True}),
        content_type="application/json",
    )
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
    response = api.post(URL, data="{", content_type="application/json")
    assert_swr_error(response, 400, "SVCSTG.SWR.4000014")


def test_put_is_not_allowed(api):
    assert_swr_error(api.put(URL), 405, "SVCSTG.SWR.4050000")
