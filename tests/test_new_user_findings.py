"""What a new user ran into when trying the service from the README (issue 11, must-have 10), each a test.

Each test names what the user did and what the answer must tell them.
"""

import runpy

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from .helpers import assert_swr_error

pytestmark = pytest.mark.django_db


def test_a_json_body_sent_as_a_form_says_to_send_content_type_json(api):
    """`curl -d '{"namespace":"x"}'` without -H Content-Type sends a form: the answer says so (it said
    'namespace is required')."""
    response = api.post(
        "/v2/manage/namespaces", data='{"namespace":"x"}', content_type="application/x-www-form-urlencoded"
    )
    body = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert "Content-Type: application/json" in body["error_msg"]


def test_a_form_body_still_works(api, namespace):
    response = api.post(
        "/v2/manage/namespaces/group/repos",
        data="repository=web&is_public=true",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 201


def test_quotas_of_an_unknown_project_do_not_claim_it_belongs_to_another_tenant(api, other_tenant):
    """The refusal reads the same for another tenant's project and one that does not exist."""
    unknown = assert_swr_error(api.get("/v2/manage/projects/abc/quotas"), 403, "SVCSTG.SWR.4039001")
    other = assert_swr_error(
        api.get(f"/v2/manage/projects/{other_tenant.project_id}/quotas"), 403, "SVCSTG.SWR.4039001"
    )
    assert "another tenant" not in unknown["error_msg"]
    assert unknown["error_msg"].replace("'abc'", "X") == other["error_msg"].replace(f"'{other_tenant.project_id}'", "X")


@pytest.mark.parametrize("path", ["nginx/web", "nginx%2Fweb", "nginx/web/access"])
def test_a_repository_name_written_with_a_slash_gets_the_dollar_hint(api, namespace, path):
    body = assert_swr_error(api.get(f"/v2/manage/namespaces/group/repos/{path}"), 404, "SVCSTG.SWR.4040083")
    assert "as '$'" in body["error_msg"]


def test_other_unknown_urls_get_no_dollar_hint(api):
    body = assert_swr_error(api.get("/v2/manage/nowhere/at/all"), 404, "SVCSTG.SWR.4040083")
    assert "'$'" not in body["error_msg"]


class TestOpenApi:
    def document(self):
        return APIClient().get("/openapi.json").json()

    def test_the_repository_patch_body_requires_is_public(self):
        """Spec section 5: PATCH takes is_public (required), category, description."""
        operation = self.document()["paths"]["/v2/manage/namespaces/{namespace}/repos/{repository}"]["patch"]
        ref = next(iter(operation["requestBody"]["content"].values()))["schema"]["$ref"]
        schema = self.document()["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema["required"] == ["is_public"]

    def test_request_bodies_are_described_for_users_not_developers(self):
        schemas = self.document()["components"]["schemas"]
        for name, schema in schemas.items():
            assert "model_rules" not in schema.get("description", ""), name
            assert "full_clean" not in schema.get("description", ""), name

    def test_the_grant_operations_say_their_bodies_and_take_json(self):
        """A new user found the /access bodies (a bare JSON array) only in the schema, under a description meant
        for developers ("subclasses say what the target is...") and offered as a form, which cannot hold an
        array. Each operation now says its body, with an example, and takes JSON."""
        document = self.document()
        for path in (
            "/v2/manage/namespaces/{namespace}/access",
            "/v2/manage/namespaces/{namespace}/repos/{repository}/access",
        ):
            operations = document["paths"][path]
            for method in ("post", "patch"):
                assert '[{"user_id": "12", "user_name": "bob", "auth": 3}]' in operations[method]["description"]
                assert list(operations[method]["requestBody"]["content"]) == ["application/json"]
            assert '["12", "15"]' in operations["delete"]["description"]
            assert "1 read, 3 edit, 7 manage" in operations["get"]["description"]
        descriptions = [op.get("description", "") for ops in document["paths"].values() for op in ops.values()]
        assert not [text for text in descriptions if "subclass" in text or ":func:" in text or "swr." in text]


def test_admin_messages_are_kept_server_side():
    """The credential actions show a secret once: it must not travel in a cookie (Django's default keeps
    messages in a signed, unencrypted cookie)."""
    assert settings.MESSAGE_STORAGE == "django.contrib.messages.storage.session.SessionStorage"


def test_gunicorn_has_no_shared_control_socket(monkeypatch):
    """gunicorn 27 puts every server of a user on one control socket path; stopping one removed another's."""
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    # gunicorn.conf.py sets DJANGO_DB_POOL_SIZE when it is unset: held here, so that monkeypatch restores it.
    monkeypatch.setenv("DJANGO_DB_POOL_SIZE", "4")
    assert runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))["control_socket_disable"] is True
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/tmp/x.ctl")
    config = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))
    assert (config["control_socket"], config["control_socket_disable"]) == ("/tmp/x.ctl", False)


def test_head_answers_carry_no_body_but_the_get_length(rf):
    """gunicorn sends what the application gives and warned on every HEAD ("WSGI app sent body bytes on a
    no-body response"), in a log line without a request id."""
    from django.http import JsonResponse

    from swr.middleware import HeadWithoutBodyMiddleware

    answer = HeadWithoutBodyMiddleware(lambda request: JsonResponse({"status": "ok"}))
    head = answer(rf.head("/healthz"))
    assert (head.content, head["Content-Length"]) == (b"", str(len(b'{"status": "ok"}')))
    assert answer(rf.get("/healthz")).content == b'{"status": "ok"}'


def test_a_newline_in_the_path_does_not_start_a_log_line(api, caplog):
    """`curl '.../namespaces/x%0aFAKE'` made the plain access line break, with `FAKE 401` on its own line."""
    import logging

    with caplog.at_level(logging.INFO, logger="swr.access"):
        api.get("/v2/manage/namespaces/x%0aFAKE%0d")
    lines = [record.getMessage() for record in caplog.records if record.name == "swr.access"]
    assert lines == ["GET /v2/manage/namespaces/x\\nFAKE\\r 404 user=alice tenant=acme"]
    assert all("\n" not in line and "\r" not in line for line in lines)
