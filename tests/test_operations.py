"""What an operator relies on: health checks, JSON access logs, production settings, the database going away."""

import json
import logging
import os
import subprocess
import sys

import pytest
from django.db import OperationalError
from django.http import HttpResponse
from rest_framework.test import APIClient

from swr.logs import AccessLogMiddleware, JsonFormatter, RequestIdLogFilter

from .helpers import ROOT, assert_swr_error, post

pytestmark = pytest.mark.django_db


class TestHealth:
    def test_healthz(self):
        response = APIClient().get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    def test_readyz(self):
        response = APIClient().get("/readyz")
        assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})

    def test_readyz_when_the_database_fails(self, monkeypatch):
        from django.db.backends.utils import CursorWrapper

        def fail(self, sql, params=None):
            raise OperationalError("connection refused")

        monkeypatch.setattr(CursorWrapper, "execute", fail)
        assert_swr_error(APIClient().get("/readyz"), 503, "SVCSTG.SWR.5030000")

    def test_health_needs_no_credentials_even_with_a_bad_token(self):
        client = APIClient()
        client.credentials(HTTP_X_AUTH_TOKEN="bad")
        assert client.get("/healthz").status_code == 200

    @pytest.mark.parametrize("url", ["/healthz", "/readyz"])
    def test_only_get(self, url):
        assert_swr_error(APIClient().post(url), 405, "SVCSTG.SWR.4050000")


def test_api_request_answers_503_when_the_database_fails(api, namespace, create_fails):

    create_fails(OperationalError("server closed the connection unexpectedly"))
    response = post(api, "/v2/manage/namespaces/group/repos", {"repository": "x", "is_public": True})
    body = assert_swr_error(response, 503, "SVCSTG.SWR.5030000")
    assert "server closed" not in body["error_msg"]


class TestAccessLog:
    def test_one_json_line_per_request(self, api, owner, namespace, caplog):
        caplog.handler.addFilter(RequestIdLogFilter())
        caplog.handler.setFormatter(JsonFormatter())
        with caplog.at_level(logging.INFO, logger="swr.access"):
            response = post(
                api,
                "/v2/manage/namespaces/group/repos",
                {"repository": "web", "is_public": True},
                HTTP_X_REQUEST_ID="log-me",
            )
        assert response.status_code == 201
        lines = [caplog.handler.format(r) for r in caplog.records if r.name == "swr.access"]
        assert len(lines) == 1
        entry = json.loads(lines[0])
        assert {k: entry[k] for k in ("method", "path", "status", "user", "tenant", "request_id")} == {
            "method": "POST",
            "path": "/v2/manage/namespaces/group/repos",
            "status": 201,
            "user": "alice",
            "tenant": "acme",
            "request_id": "log-me",
        }
        assert isinstance(entry["duration_ms"], float)
        assert entry["message"] == "POST /v2/manage/namespaces/group/repos 201 user=alice tenant=acme"

    @pytest.mark.parametrize(
        ("tenant_name", "shown"),
        [("acme user=root", '"acme user=root"'), ('a"b', '"a\\"b"'), ("tab\there", '"tab\\there"'), ("plain", "plain")],
    )
    def test_a_name_that_would_read_as_another_field_is_quoted(
        self, rf, make_tenant, make_user, caplog, tenant_name, shown
    ):
        """The plain format shows only the message: a tenant's name (set by staff, no naming rule) with a space,
        '=' or a quote would make a line read as other fields (``user=root``); it is quoted as JSON."""
        request = rf.get("/v2/")
        request.user = make_user("bob", make_tenant(tenant_name))
        with caplog.at_level(logging.INFO, logger="swr.access"):
            AccessLogMiddleware(lambda request: HttpResponse())(request)
        [line] = [record.getMessage() for record in caplog.records if record.name == "swr.access"]
        assert line == f"GET /v2/ 200 user=bob tenant={shown}"

    def test_stack_trace_goes_to_the_log_not_to_the_client(self, api, namespace, caplog, create_fails):

        create_fails(RuntimeError("internal detail"))
        caplog.handler.setFormatter(JsonFormatter())
        with caplog.at_level(logging.ERROR, logger="swr.api"):
            response = post(api, "/v2/manage/namespaces/group/repos", {"repository": "web", "is_public": True})
        assert "internal detail" not in response.content.decode()
        (record,) = [r for r in caplog.records if r.name == "swr.api"]
        entry = json.loads(caplog.handler.format(record))
        assert "Traceback" in entry["exception"]
        assert "internal detail" in entry["exception"]


def test_deploy_check_is_clean_under_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "DJANGO_SECURE_SSL": "true",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-production-secret-key-" + "x7Q" * 20,
        "DJANGO_ALLOWED_HOSTS": "registry.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
