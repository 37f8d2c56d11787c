"""POST /v2/manage/namespaces/{namespace}/repos, answer by answer (spec sections 1-3)."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from swr import names, services
from swr.choices import PermissionLevel
from swr.models import ApiToken, Repository

from .helpers import OPERATOR, assert_swr_error, post
from .test_names import REPOSITORY_CASES, short_id

pytestmark = pytest.mark.django_db

URL = "/v2/manage/namespaces/group/repos"
BODY = {"repository": "busybox", "category": "linux", "description": "this is a busybox repository", "is_public": True}


def post_json(client, body, url=URL):
    return post(client, url, body)


class TestSuccess:
    def test_spec_example_creates_the_repository(self, api, namespace, owner):
        response = post_json(api, BODY)
        assert response.status_code == 201
        assert response.json() == {}
        repository = Repository.objects.get()
        assert (repository.namespace, repository.name) == (namespace, "busybox")
        assert repository.category == "linux"
        assert repository.description == "this is a busybox repository"
        assert repository.is_public is True
        assert repository.creator == owner

    def test_url_is_the_named_route(self, namespace):
        assert reverse("repository-create", kwargs={"namespace": "group"}) == URL

    def test_defaults(self, api, namespace):
        response = post_json(api, {"repository": "plain", "is_public": False})
        assert response.status_code == 201
        repository = Repository.objects.get()
        assert (repository.category, repository.description, repository.is_public) == ("other", "", False)

    def test_charset_in_content_type_is_accepted(self, api, namespace):
        response = api.post(URL, data=json.dumps(BODY), content_type="application/json;charset=utf-8")
        assert response.status_code == 201

    def test_arms_is_stored_as_arm(self, api, namespace):
        assert post_json(api, {**BODY, "category": "arms"}).status_code == 201
        assert Repository.objects.get().category == "arm"

    @pytest.mark.parametrize(
        "category", ["app_server", "linux", "framework_app", "database", "lang", "other", "windows", "arm"]
    )
    def test_every_category(self, api, namespace, category):
        assert post_json(api, {**BODY, "category": category}).status_code == 201
        assert Repository.objects.get().category == category

    def test_name_with_slashes(self, api, namespace):
        assert post_json(api, {**BODY, "repository": "nginx/web/v1"}).status_code == 201
        assert Repository.objects.get().name == "nginx/web/v1"

    def test_unknown_fields_are_ignored(self, api, namespace):
        assert post_json(api, {**BODY, "size": 10, "color": "red"}).status_code == 201

    def test_description_of_1000_characters(self, api, namespace):
        assert post_json(api, {**BODY, "description": "d" * 1000}).status_code == 201

    def test_trailing_slash_is_not_part_of_the_api(self, api, namespace):
        body = assert_swr_error(post_json(api, BODY, url=URL + "/"), 404, "SVCSTG.SWR.4040083")
        assert "no trailing slash" in body["error_msg"]

    def test_same_name_in_another_namespace(self, api, namespace, owner, tenant):
        services.namespace_create(name="team2", tenant=tenant, creator=owner, actor=OPERATOR)
        assert post_json(api, BODY).status_code == 201
        assert post_json(api, BODY, url="/v2/manage/namespaces/team2/repos").status_code == 201
        assert Repository.objects.count() == 2

    def test_form_body(self, api, namespace):
        response = api.post(
            URL,
            data="repository=busybox&category=arms&description=form+body&is_public=TRUE",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 201, response.content
        repository = Repository.objects.get()
        assert (repository.name, repository.category, repository.description, repository.is_public) == (
            "busybox",
            "arm",
            "form body",
            True,
        )

    def test_multipart_body_like_curl_F(self, api, namespace):
        response = api.post(
            URL, data={"repository": "busybox", "is_public": "False", "category": "linux"}, format="multipart"
        )
        assert response.status_code == 201, response.content
        assert Repository.objects.get().is_public is False

    @pytest.mark.parametrize("value", ["true", "True", "TRUE", "false", "False", "fAlSe"])
    def test_form_booleans_in_any_case(self, api, namespace, value):
        response = api.post(URL, data={"repository": "r", "is_public": value}, format="multipart")
        assert response.status_code == 201
        assert Repository.objects.get().is_public is (value.lower() == "true")


class TestValidation:
    @pytest.mark.parametrize(
        ("value", "fragment"),
        [case for case in REPOSITORY_CASES if case[1]],
        ids=[short_id(name) for name, fragment in REPOSITORY_CASES if fragment],
    )
    def test_invalid_name(self, api, namespace, value, fragment):
        body = assert_swr_error(post_json(api, {**BODY, "repository": value}), 400, "SVCSTG.SWR.4001029")
        assert fragment in body["error_msg"]
        assert body["error_msg"].startswith("Invalid image name: ")
        assert body["details"] == [{"field": "repository", "error_msg": body["error_msg"]}]
        assert not Repository.objects.exists()

    def test_spec_example_message(self, api, namespace):
        body = assert_swr_error(post_json(api, {**BODY, "repository": "-web"}), 400, "SVCSTG.SWR.4001029")
        assert body["error_msg"].startswith("Invalid image name: must start with a lower-case letter or digit")

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [case for case in REPOSITORY_CASES if case[1] is None],
        ids=[short_id(name) for name, fragment in REPOSITORY_CASES if fragment is None],
    )
    def test_valid_name_table(self, api, namespace, value, fragment):
        assert post_json(api, {**BODY, "repository": value}).status_code == 201
        assert Repository.objects.get().name == value

    def test_missing_repository(self, api, namespace):
        body = assert_swr_error(post_json(api, {"is_public": True}), 400, "SVCSTG.SWR.4000014")
        assert "repository" in body["error_msg"]
        assert body["details"][0]["field"] == "repository"

    @pytest.mark.parametrize("value", [None, ["a"], {"a": 1}])
    def test_repository_of_wrong_type(self, api, namespace, value):
        body = assert_swr_error(post_json(api, {**BODY, "repository": value}), 400, "SVCSTG.SWR.4000014")
        assert body["details"][0]["field"] == "repository"

    def test_missing_is_public(self, api, namespace):
        body = assert_swr_error(post_json(api, {"repository": "a"}), 400, "SVCSTG.SWR.4001009")
        assert "is_public" in body["error_msg"]

    @pytest.mark.parametrize("value", [None, 1, 0, "true", "yes", "", [], {}])
    def test_is_public_must_be_a_json_boolean(self, api, namespace, value):
        body = assert_swr_error(post_json(api, {**BODY, "is_public": value}), 400, "SVCSTG.SWR.4001009")
        assert body["details"][0]["field"] == "is_public"

    @pytest.mark.parametrize("value", ["yes", "1", "on", ""])
    def test_form_is_public_must_be_true_or_false(self, api, namespace, value):
        response = api.post(URL, data={"repository": "a", "is_public": value}, format="multipart")
        assert_swr_error(response, 400, "SVCSTG.SWR.4001009")

    def test_form_without_is_public(self, api, namespace):
        """An HTML-form boolean would default to false; SWR requires the field."""
        response = api.post(URL, data={"repository": "a"}, format="multipart")
        assert_swr_error(response, 400, "SVCSTG.SWR.4001009")

    @pytest.mark.parametrize("value", ["games", "Linux", "", "arm64", None, 5])
    def test_bad_category(self, api, namespace, value):
        body = assert_swr_error(post_json(api, {**BODY, "category": value}), 400, "SVCSTG.SWR.4000014")
        assert body["details"][0]["field"] == "category"
        assert "category" in body["error_msg"]

    def test_bad_category_message_lists_the_choices(self, api, namespace):
        body = assert_swr_error(post_json(api, {**BODY, "category": "games"}), 400, "SVCSTG.SWR.4000014")
        assert "app_server" in body["error_msg"]
        assert "windows" in body["error_msg"]

    def test_description_too_long(self, api, namespace):
        body = assert_swr_error(post_json(api, {**BODY, "description": "d" * 1001}), 400, "SVCSTG.SWR.4000014")
        assert body["details"][0]["field"] == "description"
        assert "1000" in body["error_msg"]

    def test_description_not_a_string(self, api, namespace):
        assert_swr_error(post_json(api, {**BODY, "description": None}), 400, "SVCSTG.SWR.4000014")

    @pytest.mark.parametrize("raw", ['{"repository": "a",', "not json", "", "[1, 2", "{'a': 1}"])
    def test_malformed_json(self, api, namespace, raw):
        response = post(api, URL, raw)
        body = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
        if raw:
            assert "JSON" in body["error_msg"]

    @pytest.mark.parametrize("raw", ["[]", '"busybox"', "42", "null", "true"])
    def test_body_is_not_an_object(self, api, namespace, raw):
        response = post(api, URL, raw)
        assert_swr_error(response, 400, "SVCSTG.SWR.4000014")

    def test_non_utf8_json(self, api, namespace):
        response = post(api, URL, b'{"repository": "\xff\xfe"}')
        assert_swr_error(response, 400, "SVCSTG.SWR.4000014")

    def test_several_problems_are_all_in_details(self, api, namespace):
        body = assert_swr_error(post_json(api, {"repository": [], "is_public": "x"}), 400, "SVCSTG.SWR.4000014")
        assert {d["field"] for d in body["details"]} == {"repository", "is_public"}


class TestAuthentication:
    def test_no_token(self, namespace):
        response = post_json(APIClient(), BODY)
        assert_swr_error(response, 401, "SVCSTG.SWR.4010000")
        assert not Repository.objects.exists()

    def test_unknown_token(self, namespace):
        client = APIClient()
        client.credentials(HTTP_X_AUTH_TOKEN="swr_not-a-real-token")
        assert_swr_error(post_json(client, BODY), 401, "SVCSTG.SWR.4010000")

    def test_expired_token(self, namespace, owner):
        token, raw = services.token_issue(user=owner, actor=OPERATOR)
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        client = APIClient()
        client.credentials(HTTP_X_AUTH_TOKEN=raw)
        body = assert_swr_error(post_json(client, BODY), 401, "SVCSTG.SWR.4010000")
        assert "expired" in body["error_msg"]

    def test_revoked_token(self, namespace, owner):
        token, raw = services.token_issue(user=owner, actor=OPERATOR)
        services.token_revoke(token=token, actor=OPERATOR)
        client = APIClient()
        client.credentials(HTTP_X_AUTH_TOKEN=raw)
        body = assert_swr_error(post_json(client, BODY), 401, "SVCSTG.SWR.4010000")
        assert "revoked" in body["error_msg"]

    def test_token_of_deactivated_user(self, namespace, owner, client_for):
        client = client_for(owner)
        owner.is_active = False
        owner.save()
        assert_swr_error(post_json(client, BODY), 401, "SVCSTG.SWR.4010000")

    def test_token_hash_is_stored_not_the_token(self, owner):
        token, raw = services.token_issue(user=owner, actor=OPERATOR)
        stored = ApiToken.objects.filter(pk=token.pk).values_list("key_hash", "hint").get()
        assert raw not in stored
        assert len(raw) > 40


class TestPermissions:
    def test_namespace_of_another_tenant(self, namespace, make_user, other_tenant, client_for):
        stranger = make_user("mallory", other_tenant, is_tenant_admin=True)
        body = assert_swr_error(post_json(client_for(stranger), BODY), 403, "SVCSTG.SWR.4039001")
        assert "another tenant" in body["error_msg"]
        assert not Repository.objects.exists()

    def test_same_tenant_without_grant(self, namespace, make_user, tenant, client_for):
        colleague = make_user("bob", tenant)
        assert_swr_error(post_json(client_for(colleague), BODY), 403, "SVCSTG.SWR.4039002")

    def test_read_grant_is_not_enough(self, namespace, make_user, tenant, client_for, grant):
        reader = make_user("bob", tenant)
        grant(reader, namespace, PermissionLevel.READ)
        body = assert_swr_error(post_json(client_for(reader), BODY), 403, "SVCSTG.SWR.4039002")
        assert "(3)" in body["error_msg"]
        assert not Repository.objects.exists()

    @pytest.mark.parametrize("level", [PermissionLevel.EDIT, PermissionLevel.MANAGE])
    def test_edit_or_manage_grant_may_create(self, namespace, make_user, tenant, client_for, grant, level):
        writer = make_user("bob", tenant)
        grant(writer, namespace, level)
        assert post_json(client_for(writer), BODY).status_code == 201
        assert Repository.objects.get().creator == writer

    def test_tenant_administrator_may_create_without_grant(self, namespace, make_user, tenant, client_for):
        admin = make_user("root", tenant, is_tenant_admin=True)
        assert post_json(client_for(admin), BODY).status_code == 201

    def test_user_without_tenant(self, namespace, client_for):
        from swr.models import User

        staff = User.objects.create_user(username="staff", is_staff=True)
        assert_swr_error(post_json(client_for(staff), BODY), 403, "SVCSTG.SWR.4039001")

    def test_permission_is_checked_before_the_body(self, namespace, make_user, other_tenant, client_for):
        """A caller who may not write learns nothing from the validation of the body."""
        stranger = make_user("mallory", other_tenant)
        assert_swr_error(post_json(client_for(stranger), {"repository": "Bad"}), 403, "SVCSTG.SWR.4039001")


class TestNotFoundAndConflict:
    def test_unknown_namespace(self, api):
        body = assert_swr_error(
            post_json(api, BODY, url="/v2/manage/namespaces/nowhere/repos"), 404, "SVCSTG.SWR.4040058"
        )
        assert "nowhere" in body["error_msg"]

    def test_namespace_name_is_matched_exactly(self, api, namespace):
        assert_swr_error(post_json(api, BODY, url="/v2/manage/namespaces/GROUP/repos"), 404, "SVCSTG.SWR.4040058")

    def test_duplicate(self, api, namespace):
        assert post_json(api, BODY).status_code == 201
        body = assert_swr_error(post_json(api, BODY), 409, "SVCSTG.SWR.4090006")
        assert "busybox" in body["error_msg"]
        assert Repository.objects.count() == 1

    def test_duplicate_with_different_fields(self, api, namespace):
        assert post_json(api, BODY).status_code == 201
        assert_swr_error(post_json(api, {**BODY, "is_public": False, "category": "lang"}), 409, "SVCSTG.SWR.4090006")

    def test_conflict_found_by_the_database(self, api, namespace, monkeypatch):
        """Two racing requests both pass validation; the unique constraint decides, and the loser gets 409."""
        assert post_json(api, BODY).status_code == 201
        monkeypatch.setattr(Repository, "full_clean", lambda self, **kwargs: None)
        assert_swr_error(post_json(api, BODY), 409, "SVCSTG.SWR.4090006")


class TestProtocolErrors:
    def test_unsupported_content_type(self, api, namespace):
        response = api.post(URL, data="repository=busybox", content_type="text/plain")
        body = assert_swr_error(response, 415, "SVCSTG.SWR.4150000")
        assert "application/json" in body["error_msg"]

    def test_xml_content_type(self, api, namespace):
        response = api.post(URL, data="<repository/>", content_type="application/xml")
        assert_swr_error(response, 415, "SVCSTG.SWR.4150000")

    def test_body_over_one_mebibyte(self, api, namespace):
        big = {**BODY, "description": "d" * (1024 * 1024)}
        assert_swr_error(post_json(api, big), 413, "SVCSTG.SWR.4131001")

    def test_multipart_over_one_mebibyte(self, api, namespace):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 1))
        response = api.post(URL, data={"repository": "a", "is_public": "true", "file": upload}, format="multipart")
        assert_swr_error(response, 413, "SVCSTG.SWR.4131001")

    def test_body_just_under_the_limit_is_read(self, api, namespace):
        body = {**BODY, "padding": "p" * (1024 * 1024 - 200)}
        assert post_json(api, body).status_code == 201

    @pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
    def test_method_not_allowed(self, api, namespace, method):
        response = getattr(api, method)(URL)
        assert_swr_error(response, 405, "SVCSTG.SWR.4050000")

    def test_unknown_url(self, api):
        assert_swr_error(api.get("/v2/manage/nothing-here"), 404, "SVCSTG.SWR.4040083")
        assert_swr_error(api.post("/v2/manage/namespaces/group/repos/x/y/z"), 404, "SVCSTG.SWR.4040083")

    def test_unknown_url_without_authentication(self):
        assert_swr_error(APIClient().get("/nothing"), 404, "SVCSTG.SWR.4040083")

    def test_accept_header_does_not_change_the_answer(self, api, namespace):
        response = post(api, URL, BODY, HTTP_ACCEPT="text/html")
        assert response.status_code == 201
        assert response["Content-Type"] == "application/json"
        assert response.content == b"{}"
        response = post(api, URL, "{", HTTP_ACCEPT="application/xml")
        assert_swr_error(response, 400, "SVCSTG.SWR.4000014")

    def test_unexpected_error_answers_500_with_the_body(self, api, namespace, create_fails):
        create_fails(RuntimeError("secret detail"))
        response = post_json(api, BODY)
        body = assert_swr_error(response, 500, "SVCSTG.SWR.5000046")
        assert "secret detail" not in response.content.decode()
        assert "Traceback" not in response.content.decode()
        assert body["details"] == []


class TestRequestId:
    def test_every_answer_has_a_request_id(self, api, namespace):
        ids = {post_json(api, BODY)["X-Request-Id"], post_json(api, BODY)["X-Request-Id"]}
        assert len(ids) == 2
        assert all(ids)

    def test_client_request_id_is_echoed(self, api, namespace):
        response = post(api, URL, BODY, HTTP_X_REQUEST_ID="ci-run-42")
        assert response["X-Request-Id"] == "ci-run-42"

    @pytest.mark.parametrize("bad", ["has space", "x" * 200, "tab\there"])
    def test_unprintable_or_long_request_id_is_replaced(self, api, namespace, bad):
        response = post(api, URL, BODY, HTTP_X_REQUEST_ID=bad)
        assert response["X-Request-Id"] not in ("", bad)


def test_create_costs_a_fixed_number_of_queries(api, namespace):
    """The same six statements on both engines (one write path): the token with its user and tenant, the
    URL's organization with the caller's grant, then in one transaction the organization's lock, the quota
    place, the insert and the audit record (docs/architecture.md).

    The test runs inside a transaction, so the service's atomic block shows up
    as SAVEPOINT statements that a real request does not send; they are not counted.
    """
    with CaptureQueriesContext(connection) as captured:
        assert post_json(api, BODY).status_code == 201
    queries = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
    assert len(queries) == 6, queries
    assert [query.split()[0] for query in queries] == ["SELECT", "SELECT", "SELECT", "UPDATE", "INSERT", "INSERT"]


def test_create_checks_the_model_rules_once(api, namespace):
    """The serializer checks types; the rules (name, category, lengths) are checked once, by the service."""
    with mock.patch.object(Repository, "full_clean", autospec=True, side_effect=Repository.full_clean) as checked:
        assert post_json(api, BODY).status_code == 201
    assert checked.call_count == 1


def test_invalid_name_message_names_the_rule_of_the_spec(api, namespace):
    body = assert_swr_error(post_json(api, {**BODY, "repository": "a" * 129}), 400, "SVCSTG.SWR.4001029")
    assert body["error_msg"] == f"Invalid image name: {names.REPOSITORY.problem('a' * 129)}"
