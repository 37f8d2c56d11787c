"""Spec section 1, "every answer is the error body": on every route and with every method (issue 11, must-have 6).

Every 4xx and 5xx outside the admin site's own pages is JSON with the SWR error
body; the admin and Swagger UI work without ``collectstatic``; an unknown Host
header gets a plain 400 and one warning in the log; every log line of a request
carries its request id.
"""

import json
import logging
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client, RequestFactory
from django.urls import URLResolver, get_resolver, resolve

from swr import services
from swr.logs import RequestIdLogFilter

from .helpers import ERROR_KEYS, OPERATOR, ROOT, assert_swr_error, http_request, post, start_gunicorn

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}

# A value for each parameter of the routes; {project_id} is the caller's, filled in by the test.
SAMPLES = {
    "namespace": "group",
    "repository": "web",
    "project_id": "{project_id}",
    "app_label": "swr",
    "url": "nope/",
    "object_id": "1",
    "content_type_id": "1",
}


def _fill(pattern: str) -> str:
    """A concrete path for a route (``<str:namespace>``) or a regular expression (``(?P<app_label>...)``)."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLES.get(m[1], "1"), pattern)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLES.get(m[1], "1"), path)
    return path.replace("^", "").replace("$", "").replace("\\", "")


def _routes(patterns, prefix="", namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
        else:
            yield "/" + _fill(prefix + str(pattern.pattern)), namespace == "admin"


# Every pattern of the URL resolver, as (path, is it the admin site's).
ROUTES = sorted(set(_routes(get_resolver().url_patterns)))
API_ROUTES = [path for path, admin in ROUTES if not admin]
ADMIN_ROUTES = [path for path, admin in ROUTES if admin]


def test_the_table_covers_every_kind_of_route():
    assert {"/", "/v2", "/healthz", "/readyz", "/docs/", "/openapi.json", "/v3/auth/tokens"} <= set(API_ROUTES)
    assert "/v2/manage/namespaces/group/repos/web/access" in API_ROUTES
    assert {"/admin/", "/admin/login/", "/admin/nope/"} <= set(ADMIN_ROUTES)


@pytest.fixture
def world(namespace, owner, tenant, make_user, admin_user):
    services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
    return {"project_id": tenant.project_id}


def _client(kind, owner, admin_user):
    """A client that checks CSRF as browsers meet it, and hands back 500 answers instead of raising."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if kind == "token":
        client.defaults["HTTP_X_AUTH_TOKEN"] = services.token_issue(user=owner, actor=OPERATOR)[1]
    elif kind == "staff session":
        client.force_login(admin_user)
    return client


def _request(client, method, path):
    if method in WITH_BODY:
        return client.generic(method, path, b"{}", content_type="application/json")
    return client.generic(method, path)


def is_registry_route(path: str) -> bool:
    """The registry's routes (spec section 9): its token endpoint, and /v2/ outside the management API."""
    return path == "/service/token" or (path.startswith("/v2/") and not path.startswith("/v2/manage/"))


def _oci_error_body_problem(body) -> str | None:
    """What is wrong with the registry's error body (spec section 9: ``{"errors": [{"code", "message", ...}]}``)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors or set(body) != {"errors"}:
        return f"not the OCI error body: {body!r}"
    if not all(isinstance(e, dict) and {"code", "message"} <= set(e) <= {"code", "message", "detail"} for e in errors):
        return f"not the OCI error body: {body!r}"
    return None


def _error_body_problem(response, method, path="") -> str | None:
    """What is wrong with a 4xx/5xx answer, or None when it is the SWR error body (the OCI error body on the
    registry's routes)."""
    if not response["Content-Type"].startswith("application/json"):
        return f"Content-Type {response['Content-Type']}"
    if method == "HEAD":
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"not JSON: {response.content[:200]!r}"
    if is_registry_route(path):
        return _oci_error_body_problem(body)
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"not the error body: {body!r}"
    if not body["error_code"].startswith(f"SVCSTG.SWR.{response.status_code}"):
        return f"code {body['error_code']} for status {response.status_code}"
    return None


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["anonymous", "token", "staff session"])
@pytest.mark.parametrize("path", API_ROUTES)
def test_every_error_outside_the_admin_is_the_error_body(world, owner, admin_user, path, kind):
    """Every route and method of the service, as an anonymous client, a token holder and a staff session."""
    path = path.format(**world)
    client = _client(kind, owner, admin_user)
    problems = []
    for method in METHODS:
        response = _request(client, method, path)
        status = response.status_code
        if status >= 500:
            problems.append((method, status, response.content[:200]))
        elif status >= 400 and (problem := _error_body_problem(response, method, path)):
            problems.append((method, status, problem))
        elif "html" in response.get("Content-Type", "") and not (path == "/docs/" and method in ("GET", "HEAD")):
            problems.append((method, status, "HTML"))
    assert problems == []


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["anonymous", "staff session"])
@pytest.mark.parametrize("path", ADMIN_ROUTES)
def test_the_admin_never_answers_5xx_and_its_404_is_the_error_body(world, owner, admin_user, path, kind):
    """The admin keeps its own pages (its CSRF page, its 405); no 500 anywhere, and unknown URLs answer JSON."""
    client = _client(kind, owner, admin_user)
    problems = []
    for method in METHODS:
        response = _request(client, method, path)
        if response.status_code >= 500:
            problems.append((method, response.status_code, response.content[:200]))
        elif response.status_code == 404 and (problem := _error_body_problem(response, method)):
            problems.append((method, 404, problem))
    assert problems == []


# The examples of the issue, one by one.


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/docs/", "/openapi.json"])
@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE"])
def test_documents_answer_other_methods_405(path, method):
    """OPTIONS /docs/ was a 500 (TemplateDoesNotExist): Swagger UI renders only a page."""
    response = Client(enforce_csrf_checks=True, raise_request_exception=False).generic(method, path)
    assert_swr_error(response, 405, "SVCSTG.SWR.4050000")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/docs/", "/openapi.json"])
def test_documents_answer_get_and_head(path):
    client = Client()
    assert client.get(path).status_code == 200
    assert client.head(path).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_health_checks_answer_other_methods_405_not_the_csrf_page(path, method):
    """POST /healthz answered Django's HTML CSRF page (403)."""
    response = Client(enforce_csrf_checks=True).generic(method, path, b"x")
    assert_swr_error(response, 405, "SVCSTG.SWR.4050000")


def _csrf_failure(path):
    """Run Django's CSRF check on a POST to ``path`` without a token, as for a view that is not exempt."""
    request = RequestFactory().post(path)
    request.resolver_match = resolve(path)
    middleware = CsrfViewMiddleware(lambda request: None)
    return middleware.process_view(request, lambda request: None, (), {})


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v2/manage/namespaces", "/healthz", "/v3/auth/tokens"])
def test_a_csrf_failure_outside_the_admin_is_the_error_body(path):
    assert settings.CSRF_FAILURE_VIEW == "swr.api.errors.csrf_failure"
    body = assert_swr_error(_csrf_failure(path), 403, "SVCSTG.SWR.4039002")
    assert body["error_msg"].startswith("CSRF verification failed: ")


@pytest.mark.django_db
def test_a_csrf_failure_in_the_admin_keeps_its_page():
    response = _csrf_failure("/admin/login/")
    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content


@pytest.mark.django_db
def test_admin_login_without_csrf_token_is_a_403_not_a_500(admin_user):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "admin", "password": "password"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_api_call_of_a_staff_session_without_csrf_token_is_the_error_body(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/v2/manage/namespaces", {"namespace": "x"}, content_type="application/json")
    body = assert_swr_error(response, 403, "SVCSTG.SWR.4039002")
    assert "CSRF" in body["error_msg"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/manage/namespaces"),
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/docs/"),
        ("GET", "/admin/"),
        ("POST", "/v3/auth/tokens"),
    ],
)
def test_unknown_host_is_a_plain_400_and_one_warning(caplog, method, path):
    """The body told the client "You may need to add 'evil.example' to ALLOWED_HOSTS"; the log had an ERROR
    with a stack trace for each request."""
    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.DEBUG):
        response = Client().generic(method, path, HTTP_HOST="evil.example", HTTP_X_REQUEST_ID="host-probe")
    body = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert body["error_msg"] == "Invalid Host header."
    assert b"ALLOWED_HOSTS" not in response.content
    assert b"evil.example" not in response.content
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname, r.exc_info, r.request_id) for r in warnings] == [
        ("django.security.DisallowedHost", "WARNING", None, "host-probe")
    ]
    assert "evil.example" in warnings[0].getMessage()


@pytest.mark.django_db
def test_too_many_form_fields_is_a_400_that_names_no_setting(api, namespace, caplog):
    fields = "&".join(f"f{i}=x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    with caplog.at_level(logging.DEBUG):
        response = api.generic(
            "POST", "/v2/manage/namespaces", fields, content_type="application/x-www-form-urlencoded"
        )
    body = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert body["error_msg"] == f"Too many fields in the request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}."
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/nope/", "/admin/swr/nope/", "/admin/auth/nope/"])
def test_unknown_admin_urls_get_no_api_hint(admin_client, path):
    """The hint "(API paths have no trailing slash)" was shown for unknown /admin/ URLs."""
    body = assert_swr_error(admin_client.get(path), 404, "SVCSTG.SWR.4040083")
    assert "trailing slash" not in body["error_msg"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v2/manage/namespaces/", "/v2/manage/namespaces/group/repos/", "/v3/auth/tokens/"])
def test_api_paths_with_a_trailing_slash_get_the_hint(api, path):
    body = assert_swr_error(api.get(path), 404, "SVCSTG.SWR.4040083")
    assert body["error_msg"].endswith("(API paths have no trailing slash)")


@pytest.mark.django_db
def test_every_log_line_of_a_request_carries_its_request_id(api, namespace, caplog, create_fails):
    """django.request's line of a 500 is written after the middleware returned: it carried '-'."""
    create_fails(RuntimeError("boom"))
    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.INFO):
        response = post(
            api,
            "/v2/manage/namespaces/group/repos",
            {"repository": "web", "is_public": True},
            HTTP_X_REQUEST_ID="trace-me",
        )
    assert response.status_code == 500
    lines = [(r.name, r.request_id) for r in caplog.records]
    assert ("django.request", "trace-me") in lines
    assert {request_id for _, request_id in lines} == {"trace-me"}, lines


# /docs/ and /admin/ without collectstatic, on gunicorn as the README starts it.


@pytest.fixture(scope="module", params=["not collected", "collected"])
def plain_gunicorn(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """``gunicorn registry.wsgi:application`` with an empty STATIC_ROOT, and with one that collectstatic filled."""
    static_root = tmp_path_factory.mktemp("static")
    if request.param == "collected":
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings", "DJANGO_STATIC_ROOT": str(static_root)}
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {"DJANGO_STATIC_ROOT": str(static_root)}
    with start_gunicorn(log_path, workers=1, env=env, plain_command=True) as url:
        yield request.param, url


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", ["/docs/", "/admin/login/"])
def test_docs_and_admin_work_with_and_without_collectstatic(plain_gunicorn, page):
    """/docs/ and /admin/ answered 500 HTML when the static files were not collected."""
    collected, url = plain_gunicorn
    status, headers, body = http_request(url + page)
    assert status == 200, body[:300]
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', body)
    assert assets
    for asset in assets:
        status, _, content = http_request(url + asset.decode())
        assert (asset, status) == (asset, 200)
        assert content
    hashed = [a for a in assets if re.search(rb"\.[0-9a-f]{12}\.\w+$", a)]
    assert bool(hashed) == (collected == "collected"), assets
