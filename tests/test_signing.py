"""AK/SK signatures (SDK-HMAC-SHA256), signed by the official SDK's own signer and checked by the server."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from rest_framework.test import APIClient

from swr import services, signing
from swr.models import AccessKey, Namespace

from .helpers import assert_swr_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def key_pair(owner):
    key, secret_key = services.access_key_issue(user=owner)
    return key.access_key, secret_key


def sign(ak, sk, method, path, *, query=(), body=b"", content_type="application/json", date=None, project_id=None):
    """Headers the SDK's Signer produces for this request to http://testserver."""
    headers = {"Content-Type": content_type}
    if date is not None:
        headers["X-Sdk-Date"] = date.strftime("%Y%m%dT%H%M%SZ")
    if project_id:
        headers["X-Project-Id"] = project_id
    request = SdkRequest(
        method=method,
        schema="http",
        host="testserver",
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return request.header_params


def send(method, path, headers, *, query="", body=b"", content_type="application/json"):
    meta = {}
    for name, value in headers.items():
        if name.lower() == "content-type":
            continue
        meta["HTTP_" + name.upper().replace("-", "_")] = value
    url = path + (f"?{query}" if query else "")
    return APIClient().generic(method, url, body, content_type=content_type, **meta)


BODY = json.dumps({"namespace": "signed"}).encode()


class TestValidSignatures:
    def test_signed_create(self, key_pair, owner):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        response = send("POST", "/v2/manage/namespaces", headers, body=BODY)
        assert response.status_code == 201, response.content
        assert Namespace.objects.get().creator == owner

    def test_signed_get_with_query(self, key_pair, namespace):
        query = [("namespace", "gro"), ("order_column", "name"), ("limit", "10")]
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=query)
        response = send("GET", "/v2/manage/repos", headers, query="namespace=gro&order_column=name&limit=10")
        assert response.status_code == 200, response.content

    def test_query_order_does_not_matter(self, key_pair, namespace):
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=[("limit", "5"), ("offset", "0")])
        assert send("GET", "/v2/manage/repos", headers, query="offset=0&limit=5").status_code == 200

    def test_dollar_in_the_path(self, key_pair, namespace, owner):
        services.repository_create(namespace=namespace, name="nginx/web", is_public=False, creator=owner)
        path = "/v2/manage/namespaces/group/repos/nginx$web"
        headers = sign(*key_pair, "GET", path)
        assert send("GET", path, headers).status_code == 200

    def test_form_body_is_sent_unsigned_by_the_sdk(self, key_pair, namespace):
        form = b"repository=web&is_public=true"
        path = "/v2/manage/namespaces/group/repos"
        headers = sign(*key_pair, "POST", path, body=form, content_type="application/x-www-form-urlencoded")
        assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
        response = send("POST", path, headers, body=form, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 201

    def test_signed_create_of_a_repository_loads_key_and_organization_together(self, key_pair, namespace):
        """The access key's query also loads the organization of the URL: two statements on PostgreSQL
        (key and organization, then quota place + insert + audit record), four on SQLite."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        path, body = "/v2/manage/namespaces/group/repos", json.dumps({"repository": "web", "is_public": True}).encode()
        headers = sign(*key_pair, "POST", path, body=body)
        with CaptureQueriesContext(connection) as captured:
            assert send("POST", path, headers, body=body).status_code == 201
        queries = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
        assert len(queries) == (2 if connection.vendor == "postgresql" else 4), queries
        assert namespace.repositories.get().name == "web"

    def test_date_within_fifteen_minutes(self, key_pair):
        date = datetime.now(UTC) - timedelta(minutes=14)
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, date=date)
        assert send("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201

    def test_project_id_of_the_keys_tenant(self, key_pair, tenant):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, project_id=tenant.project_id)
        assert send("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201


class TestRefusedSignatures:
    """Each tampering is refused with 401 and the SWR error body, and nothing is written."""

    def assert_refused(self, response, fragment):
        body = assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert fragment in body["error_msg"]
        assert not Namespace.objects.exists()

    def test_changed_body(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        tampered = json.dumps({"namespace": "evil"}).encode()
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=tampered), "signature")

    def test_changed_path(self, key_pair, namespace):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces/other/repos", body=BODY)
        response = send("POST", "/v2/manage/namespaces/group/repos", headers, body=BODY)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")

    def test_changed_query(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=[("limit", "5")])
        assert_swr_error(send("GET", "/v2/manage/repos", headers, query="limit=6"), 401, "SVCSTG.SWR.4010000")

    def test_added_query_parameter(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/repos")
        assert_swr_error(send("GET", "/v2/manage/repos", headers, query="limit=6"), 401, "SVCSTG.SWR.4010000")

    def test_changed_method(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/namespaces")
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    def test_changed_signed_header(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        response = send("POST", "/v2/manage/namespaces", headers, body=BODY, content_type="application/json;v=2")
        self.assert_refused(response, "signature")

    @pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
    def test_stale_or_future_date(self, key_pair, minutes):
        date = datetime.now(UTC) + timedelta(minutes=minutes)
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, date=date)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "15 minutes")

    def test_replaced_date_header(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        headers["X-Sdk-Date"] = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    def test_unknown_access_key(self, key_pair):
        headers = sign("AAAAAAAAAAAAAAAAAAAA", key_pair[1], "POST", "/v2/manage/namespaces", body=BODY)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "unknown access key")

    def test_wrong_secret_key(self, key_pair):
        headers = sign(key_pair[0], "x" * 40, "POST", "/v2/manage/namespaces", body=BODY)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    def test_disabled_access_key(self, key_pair):
        AccessKey.objects.update(is_active=False)
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "disabled")

    def test_key_of_a_deactivated_user(self, key_pair, owner):
        owner.is_active = False
        owner.save()
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "unknown access key")

    def test_project_id_of_another_tenant(self, key_pair, other_tenant):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, project_id=other_tenant.project_id)
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "X-Project-Id")

    @pytest.mark.parametrize(
        "authorization",
        [
            "SDK-HMAC-SHA256",
            "SDK-HMAC-SHA256 Access=AK",
            "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=nothex",
            "SDK-HMAC-SHA256 Access=AK,SignedHeaders=host;x-sdk-date,Signature=",
        ],
    )
    def test_malformed_authorization(self, key_pair, authorization):
        headers = {"Authorization": authorization, "X-Sdk-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "Authentication failed")

    def test_date_must_be_signed(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        headers["Authorization"] = headers["Authorization"].replace("x-sdk-date", "x-unsigned")
        self.assert_refused(send("POST", "/v2/manage/namespaces", headers, body=BODY), "X-Sdk-Date")


class TestKeys:
    def test_secret_is_stored_encrypted(self, key_pair):
        ak, sk = key_pair
        stored = AccessKey.objects.get(access_key=ak).secret_encrypted
        assert sk not in stored
        assert signing.decrypt_secret(stored) == sk

    def test_secret_under_another_credentials_key_cannot_be_used(self, key_pair, settings):
        settings.SWR_CREDENTIALS_KEY = "rotated"
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        response = send("POST", "/v2/manage/namespaces", headers, body=BODY)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")

    def test_command_prints_ak_and_sk_on_the_last_line(self):
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("swr_accesskey", "--tenant", "acme", "--user", "sdk-bot", stdout=out)
        ak, sk = out.getvalue().splitlines()[-1].split(" ")
        headers = sign(ak, sk, "POST", "/v2/manage/namespaces", body=BODY)
        assert send("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201

    def test_admin_action_shows_the_pair_once(self, admin_client, owner):
        import re

        response = admin_client.post(
            "/admin/swr/user/", {"action": "issue_access_key", "_selected_action": [owner.pk]}, follow=True
        )
        ak, sk = re.search(r"AK <code>(\w+)</code> SK <code>(\w+)</code>", response.content.decode()).groups()
        assert AccessKey.objects.get(access_key=ak).user == owner
        assert sk not in admin_client.get("/admin/swr/accesskey/").content.decode()
        headers = sign(ak, sk, "POST", "/v2/manage/namespaces", body=BODY)
        assert send("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201
