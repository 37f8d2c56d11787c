"""Quotas (spec sections 4 and 7), IAM-style login (section 8) and the audit record of every change."""

import logging

import pytest
from rest_framework.test import APIClient

from swr import audit, services
from swr.models import AuditRecord, Namespace, Repository, Tenant

from .helpers import LOGIN, OPERATOR, admin_action, api_actor, assert_swr_error, login, login_body, post, send

pytestmark = pytest.mark.django_db


class TestQuotas:
    def test_report(self, api, namespace, owner, tenant, settings):
        settings.SWR_DEFAULT_QUOTAS = {"namespace": 5, "repository": 50}
        services.repository_create(namespace=namespace, name="a", is_public=True, creator=owner, actor=OPERATOR)
        response = api.get(f"/v2/manage/projects/{tenant.project_id}/quotas")
        assert response.status_code == 200
        assert response.json() == {
            "quotas": [
                {"quota_key": "namespace", "quota_limit": 5, "used": 1, "unit": ""},
                {"quota_key": "repository", "quota_limit": 50, "used": 1, "unit": ""},
            ]
        }

    def test_tenant_own_quota_wins_over_the_default(self, api, tenant):
        tenant.repository_quota = 7
        tenant.save()
        quotas = api.get(f"/v2/manage/projects/{tenant.project_id}/quotas").json()["quotas"]
        assert quotas[1]["quota_limit"] == 7

    def test_another_tenants_project(self, api, other_tenant):
        assert_swr_error(api.get(f"/v2/manage/projects/{other_tenant.project_id}/quotas"), 403, "SVCSTG.SWR.4039001")

    def test_unknown_project(self, api):
        assert_swr_error(api.get("/v2/manage/projects/nope/quotas"), 403, "SVCSTG.SWR.4039001")

    def test_namespace_quota_is_enforced(self, api, tenant):
        tenant.namespace_quota = 2
        tenant.save()
        assert post(api, "/v2/manage/namespaces", {"namespace": "one"}).status_code == 201
        assert post(api, "/v2/manage/namespaces", {"namespace": "two"}).status_code == 201
        body = assert_swr_error(post(api, "/v2/manage/namespaces", {"namespace": "three"}), 400, "SVCSTG.SWR.4000097")
        assert "2" in body["error_msg"]
        assert Namespace.objects.count() == 2

    def test_repository_quota_is_enforced_across_namespaces(self, api, namespace, owner, tenant):
        tenant.repository_quota = 2
        tenant.save()
        other = services.namespace_create(name="other", tenant=tenant, creator=owner, actor=OPERATOR)
        services.repository_create(namespace=other, name="a", is_public=True, actor=OPERATOR)
        assert post(api, "/v2/manage/namespaces/group/repos", {"repository": "b", "is_public": True}).status_code == 201
        response = post(api, "/v2/manage/namespaces/group/repos", {"repository": "c", "is_public": True})
        assert_swr_error(response, 400, "SVCSTG.SWR.4000098")
        assert Repository.objects.count() == 2

    def test_quota_counts_per_tenant(self, api, namespace, tenant, other_tenant, make_user, client_for):
        Tenant.objects.filter(pk=tenant.pk).update(repository_quota=1)
        assert post(api, "/v2/manage/namespaces/group/repos", {"repository": "a", "is_public": True}).status_code == 201
        zoe = make_user("zoe", other_tenant)
        assert post(client_for(zoe), "/v2/manage/namespaces", {"namespace": "theirs"}).status_code == 201
        body = {"repository": "a", "is_public": True}
        assert post(client_for(zoe), "/v2/manage/namespaces/theirs/repos", body).status_code == 201

    def test_freed_quota_can_be_used_again(self, api, namespace, tenant):
        Tenant.objects.filter(pk=tenant.pk).update(repository_quota=1)
        assert post(api, "/v2/manage/namespaces/group/repos", {"repository": "a", "is_public": True}).status_code == 201
        assert api.delete("/v2/manage/namespaces/group/repos/a").status_code == 204
        assert post(api, "/v2/manage/namespaces/group/repos", {"repository": "b", "is_public": True}).status_code == 201


class TestPasswordLogin:
    def test_login_gives_a_working_token(self, alice, tenant):
        response = login()
        assert response.status_code == 201
        body = response.json()["token"]
        assert body["user"] == {
            "id": str(alice.pk),
            "name": "alice",
            "domain": {"id": tenant.domain_id, "name": "acme"},
        }
        assert body["project"] == {"id": tenant.project_id, "name": "acme"}
        assert body["expires_at"].endswith("Z")
        client = APIClient()
        client.credentials(HTTP_X_AUTH_TOKEN=response["X-Subject-Token"])
        assert post(client, "/v2/manage/namespaces", {"namespace": "mine"}).status_code == 201

    @pytest.mark.parametrize(
        "body",
        [
            login_body(password="wrong"),
            login_body(name="nobody"),
            login_body(domain="globex"),
        ],
        ids=["password", "user", "domain"],
    )
    def test_wrong_credentials(self, alice, other_tenant, body):
        response = post(APIClient(), LOGIN, body)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert "X-Subject-Token" not in response

    @pytest.mark.parametrize("body", [{}, {"auth": {}}, {"auth": {"identity": {"methods": ["token"]}}}, []])
    def test_malformed(self, alice, body):
        assert_swr_error(post(APIClient(), LOGIN, body), 400, "SVCSTG.SWR.4000014")


class TestAudit:
    def test_successful_create_is_recorded_with_the_request_id(self, api, namespace, owner, tenant):
        response = post(
            api,
            "/v2/manage/namespaces/group/repos",
            {"repository": "web", "is_public": True},
            HTTP_X_REQUEST_ID="req-123",
        )
        assert response["X-Request-Id"] == "req-123"
        record = AuditRecord.objects.get(action="repository.create")
        assert (record.user, record.username, record.tenant, record.object) == (owner, "alice", tenant, "group/web")
        # A change made has no status of its own: the service that made it records it, in its transaction.
        assert (record.outcome, record.status_code, record.source, record.request_id) == (
            "success",
            None,
            "api",
            "req-123",
        )

    def test_refused_change_is_recorded_as_failure(self, namespace, make_user, other_tenant, client_for):
        zoe = make_user("zoe", other_tenant)
        client_for(zoe).delete("/v2/manage/namespaces/group")
        record = AuditRecord.objects.get(source="api")
        assert (record.action, record.outcome, record.status_code, record.username) == (
            "namespace.delete",
            "failure",
            403,
            "zoe",
        )
        assert record.detail.startswith("SVCSTG.SWR.4039001")
        assert record.tenant == other_tenant

    def test_reads_are_not_recorded(self, api, namespace):
        api.get("/v2/manage/namespaces/group")
        api.get("/v2/manage/repos")
        assert not AuditRecord.objects.filter(source="api").exists()

    def test_every_kind_of_change_is_recorded(self, api, namespace, owner, make_user, tenant):
        bob = make_user("bob", tenant)
        post(api, "/v2/manage/namespaces", {"namespace": "team"})
        post(api, "/v2/manage/namespaces/group/repos", {"repository": "web", "is_public": True})
        send(api, "PATCH", "/v2/manage/namespaces/group/repos/web", {"is_public": False})
        post(api, "/v2/manage/namespaces/group/access", [{"user_id": str(bob.pk), "auth": 1}])
        api.delete("/v2/manage/namespaces/group/repos/web")
        api.delete("/v2/manage/namespaces/team")
        assert list(AuditRecord.objects.filter(source="api").order_by("id").values_list("action", "outcome")) == [
            ("namespace.create", "success"),
            ("repository.create", "success"),
            ("repository.update", "success"),
            ("namespace.grants.create", "success"),
            ("repository.delete", "success"),
            ("namespace.delete", "success"),
        ]

    def test_a_create_and_its_record_are_stored_together(self, api, namespace, tenant):
        """One record per request: success only when the repository exists, failure when it was refused."""
        body = {"repository": "web", "is_public": True}
        assert post(api, "/v2/manage/namespaces/group/repos", body).status_code == 201
        assert post(api, "/v2/manage/namespaces/group/repos", body).status_code == 409
        Tenant.objects.filter(pk=tenant.pk).update(repository_quota=1)
        assert post(api, "/v2/manage/namespaces/group/repos", {**body, "repository": "api"}).status_code == 400
        records = AuditRecord.objects.filter(action="repository.create").order_by("id")
        assert [(r.object, r.outcome, r.status_code) for r in records] == [
            ("group/web", "success", None),
            ("group/web", "failure", 409),
            ("group/api", "failure", 400),
        ]
        assert records[0].pk is not None
        assert Repository.objects.filter(name="web").count() == 1
        assert not Repository.objects.filter(name="api").exists()

    def test_what_cannot_be_stored_as_text_is_escaped_and_long_text_cut(self, owner):
        record = audit.record(api_actor(owner), "namespace.create", "bad\x00name\n", success=False, detail="x" * 600)
        stored = AuditRecord.objects.get(pk=record.pk)
        assert stored.object == "bad\\x00name\\n"
        assert stored.detail == "x" * 512

    def test_records_outlive_the_user_and_tenant_they_name(self, make_tenant, make_user, client_for):
        gone = make_tenant("gone")
        zoe = make_user("zoe", gone)
        post(client_for(zoe), "/v2/manage/namespaces", {"namespace": "short-lived"})
        services.namespace_delete(namespace=Namespace.objects.get(name="short-lived"), actor=OPERATOR)
        zoe.delete()
        gone.delete()
        record = AuditRecord.objects.get(action="namespace.create")
        assert (record.user_id, record.tenant_id, record.username, record.outcome) == (None, None, "zoe", "success")

    def test_admin_changes_are_recorded(self, admin_client, admin_user, namespace):
        admin_client.post(f"/admin/swr/tenant/{namespace.tenant.pk}/change/", {"name": "acme", "repository_quota": 9})
        record = AuditRecord.objects.get(source="admin")
        assert (record.source, record.action, record.user) == ("admin", "tenant.update", admin_user)

    def test_audit_trail_is_read_only_in_the_admin(self, admin_client, api, namespace):
        post(api, "/v2/manage/namespaces", {"namespace": "team"})
        record = AuditRecord.objects.get(source="api")
        assert admin_client.get("/admin/swr/auditrecord/").status_code == 200
        assert admin_client.get("/admin/swr/auditrecord/add/").status_code == 403
        page = admin_client.get(f"/admin/swr/auditrecord/{record.pk}/change/")
        assert page.status_code == 200
        assert b'name="action"' not in page.content  # shown, not editable
        admin_client.post(f"/admin/swr/auditrecord/{record.pk}/delete/", {"post": "yes"})
        assert AuditRecord.objects.filter(pk=record.pk).exists()

    def test_log_lines_carry_the_request_id(self, api, namespace, caplog, create_fails):
        create_fails(RuntimeError("boom"))
        from swr.logs import RequestIdLogFilter

        caplog.handler.addFilter(RequestIdLogFilter())
        with caplog.at_level(logging.ERROR, logger="swr.api"):
            response = post(
                api,
                "/v2/manage/namespaces/group/repos",
                {"repository": "web", "is_public": True},
                HTTP_X_REQUEST_ID="trace-me",
            )
        assert response.status_code == 500
        assert [r.request_id for r in caplog.records if r.name == "swr.api"] == ["trace-me"]


class TestUsageCounters:
    """The quota is checked against counters kept with every create and delete; they must follow the rows."""

    def usage(self, tenant):
        tenant.refresh_from_db()
        return (tenant.namespace_count, tenant.repository_count)

    def test_api_creates_and_deletes(self, api, tenant):
        post(api, "/v2/manage/namespaces", {"namespace": "team"})
        post(api, "/v2/manage/namespaces/team/repos", {"repository": "a", "is_public": True})
        post(api, "/v2/manage/namespaces/team/repos", {"repository": "b", "is_public": True})
        assert self.usage(tenant) == (1, 2)
        post(api, "/v2/manage/namespaces/team/repos", {"repository": "b", "is_public": True})  # 409: no change
        post(api, "/v2/manage/namespaces/team/repos", {"repository": "Bad", "is_public": True})  # 400: no change
        assert self.usage(tenant) == (1, 2)
        api.delete("/v2/manage/namespaces/team/repos/a")
        api.delete("/v2/manage/namespaces/team")  # 406: still holds b
        assert self.usage(tenant) == (1, 1)
        api.delete("/v2/manage/namespaces/team/repos/b")
        api.delete("/v2/manage/namespaces/team")
        assert self.usage(tenant) == (0, 0)

    def test_admin_deletes_go_through_the_service(self, admin_client, api, namespace, owner, tenant):
        web = services.repository_create(namespace=namespace, name="web", is_public=True, creator=owner, actor=OPERATOR)
        assert self.usage(tenant) == (1, 1)
        admin_client.post(f"/admin/swr/repository/{web.pk}/delete/", {"post": "yes"})
        assert not Repository.objects.exists()
        assert self.usage(tenant) == (1, 0)
        admin_action(admin_client, Namespace, "delete_selected", [namespace.pk], post="yes")
        assert not Namespace.objects.exists()
        assert self.usage(tenant) == (0, 0)

    def test_recount_after_rows_written_outside_the_services(self, namespace, tenant):
        Repository.objects.bulk_create(Repository(namespace=namespace, name=f"r{i}", is_public=False) for i in range(5))
        assert self.usage(tenant) == (1, 0)
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("swr_recount", stdout=out)
        assert self.usage(tenant) == (1, 5)
        assert "acme: 1 organizations, 5 repositories" in out.getvalue()

    def test_quota_report_reads_the_counters(self, api, namespace, owner, tenant):
        services.repository_create(namespace=namespace, name="a", is_public=True, creator=owner, actor=OPERATOR)
        quotas = api.get(f"/v2/manage/projects/{tenant.project_id}/quotas").json()["quotas"]
        assert [q["used"] for q in quotas] == [1, 1]


@pytest.mark.django_db
@pytest.mark.parametrize("credential", [{}, {"HTTP_X_AUTH_TOKEN": "bogus"}], ids=["none", "bogus token"])
def test_unauthenticated_changes_leave_no_record(credential):
    """Anonymous clients could grow the audit table without end, one row per request (a tester's finding)."""
    from rest_framework.test import APIClient

    response = APIClient().post("/v2/manage/namespaces", {"namespace": "x"}, format="json", **credential)
    assert response.status_code == 401
    assert not AuditRecord.objects.filter(source="api").exists()


@pytest.mark.django_db
def test_failed_password_logins_are_recorded(owner):
    from rest_framework.test import APIClient

    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alice", "password": "wrong", "domain": {"name": "acme"}}}}}}  # fmt: skip
    assert APIClient().post("/v3/auth/tokens", body, format="json").status_code == 401
    record = AuditRecord.objects.get(source="api")
    assert (record.action, record.outcome, record.object) == ("apitoken.create", "failure", "acme/alice")
