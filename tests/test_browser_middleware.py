"""The registry's routes go around the middleware of the browser's pages (swr.browser_middleware.BrowserOnlyMixin).

Registry clients (spec section 9) send no session or CSRF cookie and load no static files, and the registry
authenticates its callers itself (Basic credentials, bearer tokens). So on /v2/<name>/... and /service/token
a session is never looked at and never names the caller; the admin, the management API (/v2/manage/...)
and static files keep the whole middleware.
"""

import logging

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

BLOB = "/v2/group/web/blobs/sha256:" + "a" * 64
REGISTRY_ROUTES = [("get", "/v2/"), ("head", BLOB), ("get", "/v2/_catalog"), ("get", "/service/token")]


@pytest.fixture
def browser(root):
    """A browser with the superuser's admin session and a CSRF cookie."""
    client = Client()
    client.force_login(root)
    client.get("/admin/login/")  # sets the csrftoken cookie
    return client


@pytest.mark.parametrize(("method", "path"), REGISTRY_ROUTES)
def test_registry_answers_carry_no_browser_headers(browser, method, path):
    answer = getattr(browser, method)(path)
    assert "Cookie" not in answer.headers.get("Vary", "")  # no session was looked at
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["X-Request-Id"]  # the project's own middleware still run


@pytest.mark.parametrize("path", ["/v2/", BLOB])
def test_an_admin_session_does_not_authenticate_registry_requests(browser, path):
    answer = browser.get(path)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("path", ["/v2/", BLOB])
def test_the_access_line_of_a_refused_registry_request_names_no_session_user(browser, caplog, path):
    """The registry refused the request (401): its access line must not name the admin whose session cookie the
    browser sent along."""
    with caplog.at_level(logging.INFO, logger="swr.access"):
        assert browser.get(path).status_code == 401
    (line,) = [record for record in caplog.records if record.name == "swr.access"]
    assert line.user is None
    assert "user=" not in line.getMessage()


def test_the_admin_keeps_the_browser_middleware(browser):
    answer = browser.get("/admin/")
    assert answer.status_code == 200
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "Cookie" in answer.headers["Vary"]  # the session decides what the page shows
    assert Client().get("/admin/login/").cookies["csrftoken"].value


def test_the_management_api_keeps_the_browser_middleware(browser):
    answer = browser.get("/v2/manage/namespaces")
    assert "Cookie" in answer.headers["Vary"]


def test_static_files_are_still_served():
    answer = Client().get("/static/admin/css/base.css")
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content if answer.streaming else [answer.content])
