"""GET, PATCH and DELETE /v2/manage/namespaces/{namespace}/repos/{repository} (spec sections 5 and 6)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from swr import services
from swr.choices import PermissionLevel
from swr.models import Repository

from .helpers import OPERATOR, assert_swr_error, send

pytestmark = pytest.mark.django_db

DETAIL_TYPES = {
    "id": int, "ns_id": int, "name": str, "category": str, "description": str, "creator_id": str,
    "creator_name": str, "size": int, "is_public": bool, "num_images": int, "num_download": int, "url": str,
    "path": str, "internal_path": str, "created": str, "updated": str, "domain_id": str, "priority": int,
}  # fmt: skip


@pytest.fixture
def web(namespace, owner):
    return services.repository_create(
        namespace=namespace,
        name="nginx/web",
        is_public=False,
        category="linux",
        description="web",
        creator=owner,
        actor=OPERATOR,
    )


URL = "/v2/manage/namespaces/group/repos/nginx$web"


def patch(client, body, url=URL):
    return send(client, "PATCH", url, body)


class TestRetrieve:
    def test_show(self, api, web, namespace, owner, tenant, settings):
        settings.SWR_REGISTRY_HOST = "swr.example.com"
        response = api.get(URL)
        assert response.status_code == 200
        body = response.json()
        assert {k: type(v) for k, v in body.items()} == DETAIL_TYPES
        assert body["id"] == web.pk
        assert body["ns_id"] == namespace.pk
        assert (body["name"], body["category"], body["description"], body["is_public"]) == (
            "nginx/web",
            "linux",
            "web",
            False,
        )
        assert (body["creator_id"], body["creator_name"]) == (str(owner.pk), "alice")
        assert body["path"] == "swr.example.com/group/nginx/web"
        assert body["domain_id"] == tenant.domain_id
        assert body["created"].endswith("Z")

    def test_public_repository_of_another_tenant_is_readable(self, web, make_user, other_tenant, client_for):
        Repository.objects.filter(pk=web.pk).update(is_public=True)
        zoe = make_user("zoe", other_tenant)
        assert client_for(zoe).get(URL).status_code == 200

    def test_private_repository_of_another_tenant(self, web, make_user, other_tenant, client_for):
        zoe = make_user("zoe", other_tenant)
        assert_swr_error(client_for(zoe).get(URL), 403, "SVCSTG.SWR.4039001")

    def test_missing_repository_in_another_tenant_does_not_tell_it_is_missing(
        self, namespace, make_user, other_tenant, client_for
    ):
        zoe = make_user("zoe", other_tenant)
        assert_swr_error(client_for(zoe).get("/v2/manage/namespaces/group/repos/nope"), 403, "SVCSTG.SWR.4039001")

    def test_reader_of_the_namespace(self, web, make_user, tenant, client_for, grant, namespace):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.READ)
        assert client_for(bob).get(URL).status_code == 200

    def test_missing_repository(self, api, namespace):
        body = assert_swr_error(api.get("/v2/manage/namespaces/group/repos/nope"), 404, "SVCSTG.SWR.4040010")
        assert "nope" in body["error_msg"]

    def test_slash_must_be_written_as_dollar(self, api, web):
        assert_swr_error(api.get("/v2/manage/namespaces/group/repos/nginx/web"), 404, "SVCSTG.SWR.4040083")

    def test_missing_namespace(self, api):
        assert_swr_error(api.get("/v2/manage/namespaces/nowhere/repos/web"), 404, "SVCSTG.SWR.4040058")

    @pytest.mark.parametrize("segment", ["%00", "NGINX$WEB", "a%20b", "$", "$$"])
    def test_impossible_names_are_not_found(self, api, web, segment):
        assert_swr_error(api.get(f"/v2/manage/namespaces/group/repos/{segment}"), 404, "SVCSTG.SWR.4040010")

    def test_query_count(self, api, web):
        with CaptureQueriesContext(connection) as queries:
            assert api.get(URL).status_code == 200
        assert len(queries) <= 3


class TestUpdate:
    def test_update(self, api, web):
        response = patch(api, {"is_public": True, "category": "arms", "description": "new"})
        assert response.status_code == 201
        assert response.json() == {}
        web.refresh_from_db()
        assert (web.is_public, web.category, web.description) == (True, "arm", "new")

    def test_only_is_public(self, api, web):
        before = web.updated_at
        assert patch(api, {"is_public": True}).status_code == 201
        web.refresh_from_db()
        assert (web.is_public, web.category, web.description) == (True, "linux", "web")
        assert web.updated_at > before

    def test_name_cannot_change(self, api, web):
        assert patch(api, {"is_public": True, "repository": "other", "name": "other"}).status_code == 201
        web.refresh_from_db()
        assert web.name == "nginx/web"

    def test_form_body(self, api, web):
        response = api.patch(
            URL, data="is_public=TRUE&description=form", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 201
        web.refresh_from_db()
        assert (web.is_public, web.description) == (True, "form")

    def test_is_public_is_required(self, api, web):
        assert_swr_error(patch(api, {"category": "lang"}), 400, "SVCSTG.SWR.4001009")
        web.refresh_from_db()
        assert web.category == "linux"

    @pytest.mark.parametrize(
        "body", [{"is_public": True, "category": "games"}, {"is_public": True, "description": "d" * 1001}]
    )
    def test_invalid(self, api, web, body):
        assert_swr_error(patch(api, body), 400, "SVCSTG.SWR.4000014")

    def test_edit_grant_may_update(self, web, make_user, tenant, client_for, grant, namespace):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.EDIT)
        assert patch(client_for(bob), {"is_public": True}).status_code == 201

    def test_read_grant_may_not(self, web, make_user, tenant, client_for, grant, namespace):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.READ)
        assert_swr_error(patch(client_for(bob), {"is_public": True}), 403, "SVCSTG.SWR.4039002")

    def test_public_repository_of_another_tenant_is_read_only(self, web, make_user, other_tenant, client_for):
        Repository.objects.filter(pk=web.pk).update(is_public=True)
        zoe = make_user("zoe", other_tenant, is_tenant_admin=True)
        assert_swr_error(patch(client_for(zoe), {"is_public": False}), 403, "SVCSTG.SWR.4039001")
        web.refresh_from_db()
        assert web.is_public

    def test_missing(self, api, namespace):
        assert_swr_error(
            patch(api, {"is_public": True}, url="/v2/manage/namespaces/group/repos/nope"), 404, "SVCSTG.SWR.4040010"
        )


class TestDelete:
    def test_delete(self, api, web):
        response = api.delete(URL)
        assert response.status_code == 204
        assert response.content == b""
        assert not Repository.objects.exists()
        assert_swr_error(api.get(URL), 404, "SVCSTG.SWR.4040010")

    def test_edit_grant_may_not_delete(self, web, make_user, tenant, client_for, grant, namespace):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.EDIT)
        assert_swr_error(client_for(bob).delete(URL), 403, "SVCSTG.SWR.4039002")
        assert Repository.objects.exists()

    def test_manage_grant_may_delete(self, web, make_user, tenant, client_for, grant, namespace):
        bob = make_user("bob", tenant)
        grant(bob, namespace, PermissionLevel.MANAGE)
        assert client_for(bob).delete(URL).status_code == 204

    def test_other_tenant(self, web, make_user, other_tenant, client_for):
        Repository.objects.filter(pk=web.pk).update(is_public=True)
        zoe = make_user("zoe", other_tenant, is_tenant_admin=True)
        assert_swr_error(client_for(zoe).delete(URL), 403, "SVCSTG.SWR.4039001")

    def test_namespace_can_be_deleted_after_its_last_repository(self, api, web):
        assert api.delete(URL).status_code == 204
        assert api.delete("/v2/manage/namespaces/group").status_code == 204
