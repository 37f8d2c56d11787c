"""AK/SK signatures (SDK-HMAC-SHA256), signed by the official SDK's own signer and checked by the server."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from swr import services, signing
from swr.models import AccessKey, Namespace, User

from .helpers import OPERATOR, admin_action, assert_swr_error, send_signed, sign

pytestmark = pytest.mark.django_db


BODY = json.dumps({"namespace": "signed"}).encode()


class TestValidSignatures:
    def test_signed_create(self, key_pair, owner):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        response = send_signed("POST", "/v2/manage/namespaces", headers, body=BODY)
        assert response.status_code == 201, response.content
        assert Namespace.objects.get().creator == owner

    def test_signed_get_with_query(self, key_pair, namespace):
        query = [("namespace", "gro"), ("order_column", "name"), ("limit", "10")]
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=query)
        response = send_signed("GET", "/v2/manage/repos", headers, query="namespace=gro&order_column=name&limit=10")
        assert response.status_code == 200, response.content

    def test_query_order_does_not_matter(self, key_pair, namespace):
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=[("limit", "5"), ("offset", "0")])
        assert send_signed("GET", "/v2/manage/repos", headers, query="offset=0&limit=5").status_code == 200

    def test_dollar_in_the_path(self, key_pair, namespace, owner):
        services.repository_create(
            namespace=namespace, name="nginx/web", is_public=False, creator=owner, actor=OPERATOR
        )
        path = "/v2/manage/namespaces/group/repos/nginx$web"
        headers = sign(*key_pair, "GET", path)
        assert send_signed("GET", path, headers).status_code == 200

    def test_form_body_is_sent_unsigned_by_the_sdk(self, key_pair, namespace):
        form = b"repository=web&is_public=true"
        path = "/v2/manage/namespaces/group/repos"
        headers = sign(*key_pair, "POST", path, body=form, content_type="application/x-www-form-urlencoded")
        assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
        response = send_signed("POST", path, headers, body=form, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 201

    def test_signed_create_costs_two_statements_more_than_with_a_token(self, key_pair, namespace):
        """The statements of a create with a token (the key instead of the token, tests/test_api_repositories.py),
        plus the two that record the used signature (removal of expired ones, insert)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        path, body = "/v2/manage/namespaces/group/repos", json.dumps({"repository": "web", "is_public": True}).encode()
        headers = sign(*key_pair, "POST", path, body=body)
        with CaptureQueriesContext(connection) as captured:
            assert send_signed("POST", path, headers, body=body).status_code == 201
        queries = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
        assert len(queries) == 6 + 2, queries
        assert namespace.repositories.get().name == "web"

    def test_date_within_fifteen_minutes(self, key_pair):
        date = datetime.now(UTC) - timedelta(minutes=14)
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, date=date)
        assert send_signed("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201

    def test_project_id_of_the_keys_tenant(self, key_pair, tenant):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, project_id=tenant.project_id)
        assert send_signed("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201


class TestRefusedSignatures:
    """Each tampering is refused with 401 and the SWR error body, and nothing is written."""

    def assert_refused(self, response, fragment):
        body = assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert fragment in body["error_msg"]
        assert not Namespace.objects.exists()

    def test_changed_body(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        tampered = json.dumps({"namespace": "evil"}).encode()
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=tampered), "signature")

    def test_changed_path(self, key_pair, namespace):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces/other/repos", body=BODY)
        response = send_signed("POST", "/v2/manage/namespaces/group/repos", headers, body=BODY)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")

    def test_changed_query(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/repos", query=[("limit", "5")])
        assert_swr_error(send_signed("GET", "/v2/manage/repos", headers, query="limit=6"), 401, "SVCSTG.SWR.4010000")

    def test_added_query_parameter(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/repos")
        assert_swr_error(send_signed("GET", "/v2/manage/repos", headers, query="limit=6"), 401, "SVCSTG.SWR.4010000")

    def test_changed_method(self, key_pair):
        headers = sign(*key_pair, "GET", "/v2/manage/namespaces")
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    def test_changed_signed_header(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        response = send_signed("POST", "/v2/manage/namespaces", headers, body=BODY, content_type="application/json;v=2")
        self.assert_refused(response, "signature")

    @pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
    def test_stale_or_future_date(self, key_pair, minutes):
        date = datetime.now(UTC) + timedelta(minutes=minutes)
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, date=date)
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "15 minutes")

    def test_replaced_date_header(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        headers["X-Sdk-Date"] = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    def test_wrong_secret_key(self, key_pair):
        headers = sign(key_pair[0], "x" * 40, "POST", "/v2/manage/namespaces", body=BODY)
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "signature")

    @pytest.mark.parametrize("case", ["unknown", "disabled", "user deactivated", "secret under another key"])
    def test_unusable_access_keys_read_the_same(self, key_pair, owner, settings, case):
        """Spec section 1: an unknown and a disabled access key get the same message; so do a key of a
        deactivated user and one whose secret this server cannot decrypt: none tells that the key exists."""
        access_key, secret_key = key_pair
        if case == "unknown":
            access_key = "AAAAAAAAAAAAAAAAAAAA"
        elif case == "disabled":
            AccessKey.objects.update(is_active=False)
        elif case == "user deactivated":
            owner.is_active = False
            owner.save()
        else:
            settings.SWR_CREDENTIALS_KEY = "rotated"
        headers = sign(access_key, secret_key, "POST", "/v2/manage/namespaces", body=BODY)
        response = send_signed("POST", "/v2/manage/namespaces", headers, body=BODY)
        self.assert_refused(response, "unknown or disabled access key")
        assert response.json()["error_msg"] == "Authentication failed: unknown or disabled access key."

    def test_project_id_of_another_tenant(self, key_pair, other_tenant):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY, project_id=other_tenant.project_id)
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "X-Project-Id")

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
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "Authentication failed")

    def test_date_must_be_signed(self, key_pair):
        headers = sign(*key_pair, "POST", "/v2/manage/namespaces", body=BODY)
        headers["Authorization"] = headers["Authorization"].replace("x-sdk-date", "x-unsigned")
        self.assert_refused(send_signed("POST", "/v2/manage/namespaces", headers, body=BODY), "X-Sdk-Date")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TestBodyBinding:
    """Issue 11 must-have 4: the signature binds the body it claims (spec section 1)."""

    PATH = "/v2/manage/namespaces"
    OTHER = json.dumps({"namespace": "evil"}).encode()

    def test_declared_digest_of_another_body_is_refused(self, key_pair):
        """Signed with X-Sdk-Content-Sha256 = digest of body A, sent with body B: refused, nothing created."""
        headers = sign(*key_pair, "POST", self.PATH, body=BODY, content_hash=sha256(BODY))
        response = send_signed("POST", self.PATH, headers, body=self.OTHER)
        body = assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert "X-Sdk-Content-Sha256 is not the SHA-256 of the body" in body["error_msg"]
        assert not Namespace.objects.exists()

    def test_declared_digest_with_an_empty_body_is_refused(self, key_pair, namespace):
        path = "/v2/manage/namespaces/group"
        headers = sign(*key_pair, "DELETE", path, content_hash=sha256(BODY))
        assert_swr_error(send_signed("DELETE", path, headers), 401, "SVCSTG.SWR.4010000")
        assert Namespace.objects.filter(name="group").exists()

    @pytest.mark.parametrize("digest", [sha256(BODY), sha256(BODY).upper()], ids=["lower", "upper"])
    def test_declared_digest_of_the_body_is_accepted(self, key_pair, digest):
        headers = sign(*key_pair, "POST", self.PATH, body=BODY, content_hash=digest)
        assert send_signed("POST", self.PATH, headers, body=BODY).status_code == 201

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/json;charset=utf-8", "Application/JSON", " application/json"]
    )
    def test_unsigned_payload_of_a_json_body_is_refused(self, key_pair, content_type):
        """The SDK hashes JSON bodies; UNSIGNED-PAYLOAD there would let anyone swap the body."""
        headers = sign(
            *key_pair, "POST", self.PATH, body=BODY, content_type=content_type, content_hash="UNSIGNED-PAYLOAD"
        )
        response = send_signed("POST", self.PATH, headers, body=self.OTHER, content_type=content_type)
        body = assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert "UNSIGNED-PAYLOAD is accepted only for form, multipart and stream bodies" in body["error_msg"]
        assert not Namespace.objects.exists()

    @pytest.mark.parametrize("declared", ["abc", "sha256", "0" * 63, "g" * 64, "unsigned-payload", ""])
    def test_any_other_declared_value_is_refused(self, key_pair, declared):
        headers = sign(*key_pair, "POST", self.PATH, body=BODY, content_hash=declared)
        body = assert_swr_error(send_signed("POST", self.PATH, headers, body=BODY), 401, "SVCSTG.SWR.4010000")
        assert "X-Sdk-Content-Sha256" in body["error_msg"]
        assert not Namespace.objects.exists()

    def test_multipart_body_is_sent_unsigned_by_the_sdk(self, key_pair, namespace):
        """The SDK declares UNSIGNED-PAYLOAD for multipart/form-data (any Content-Type but JSON and BSON)."""
        from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

        path = "/v2/manage/namespaces/group/repos"
        form = encode_multipart(BOUNDARY, {"repository": "web", "is_public": "true"})
        headers = sign(*key_pair, "POST", path, body=form, content_type=MULTIPART_CONTENT)
        assert headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
        assert send_signed("POST", path, headers, body=form, content_type=MULTIPART_CONTENT).status_code == 201
        assert namespace.repositories.get().name == "web"

    def test_content_hash_header_need_not_be_signed_to_count(self, key_pair):
        """A declared digest that is left out of SignedHeaders is still checked against the body."""
        headers = sign(*key_pair, "POST", self.PATH, body=BODY, content_hash=sha256(BODY))
        headers["Authorization"] = headers["Authorization"].replace("x-sdk-content-sha256;", "")
        response = send_signed("POST", self.PATH, headers, body=self.OTHER)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert not Namespace.objects.exists()


class TestKeys:
    def test_secret_is_stored_encrypted(self, key_pair):
        ak, sk = key_pair
        stored = AccessKey.objects.get(access_key=ak).secret_encrypted
        assert sk not in stored
        assert signing.decrypt_secret(stored) == sk

    def test_command_prints_ak_and_sk_on_the_last_line(self):
        from io import StringIO

        from django.core.management import call_command

        out = StringIO()
        call_command("swr_accesskey", "--tenant", "acme", "--user", "sdk-bot", stdout=out)
        ak, sk = out.getvalue().splitlines()[-1].split(" ")
        headers = sign(ak, sk, "POST", "/v2/manage/namespaces", body=BODY)
        assert send_signed("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201

    def test_admin_action_shows_the_pair_once(self, admin_client, owner):
        import re

        response = admin_action(admin_client, User, "issue_access_key", [owner.pk], follow=True)
        ak, sk = re.search(r"AK <code>(\w+)</code> SK <code>(\w+)</code>", response.content.decode()).groups()
        assert AccessKey.objects.get(access_key=ak).user == owner
        assert sk not in admin_client.get("/admin/swr/accesskey/").content.decode()
        headers = sign(ak, sk, "POST", "/v2/manage/namespaces", body=BODY)
        assert send_signed("POST", "/v2/manage/namespaces", headers, body=BODY).status_code == 201
