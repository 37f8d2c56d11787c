"""Request head limits answer with the SWR error body (spec section 1: 414 SVCSTG.SWR.4141001, 431 SVCSTG.SWR.4311001).

The application's limits (swr.middleware.RequestHeadLimitMiddleware): a
request line of at most 4 KiB, a header (``Name: value``) of at most 8 KiB, at
most 100 headers. gunicorn's own limits (gunicorn.conf.py) lie above them, so
that in the production setup a request just past a limit is answered by the
application, not by gunicorn's plain page. Over HTTP against gunicorn with
the production configuration, and through Django's test client. On the
registry's routes (/v2/ and /v2/<name>/..., /service/token) the same limits
answer with the OCI body (spec section 9), code UNSUPPORTED, and under /v2/
the registry's Docker-Distribution-API-Version header.
"""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from .helpers import assert_swr_error

pytestmark = pytest.mark.django_db

REQUEST_LINE_TOO_LONG = "SVCSTG.SWR.4141001"
HEADERS_TOO_LARGE = "SVCSTG.SWR.4311001"
# Registry routes (OCI body) and management paths (SWR body, also under /v2 and /v2/manage/).
REGISTRY_PATHS = ("/v2/", "/v2/org/repo/manifests/latest", "/service/token")
MANAGEMENT_PATHS = ("/healthz", "/v2", "/v2/manage/namespaces", "/v3/auth/tokens")
# "GET " + target + " HTTP/1.1"
LINE_OVERHEAD = len("GET ") + len(" HTTP/1.1")


def get(server, target, headers=()):
    """GET ``target`` over a connection of its own; (status, headers, body text). http.client adds Host and
    Accept-Encoding."""
    url = urlsplit(server)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("GET", target)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode("latin-1")
    finally:
        connection.close()


@pytest.mark.live
class TestOverHttp:
    """gunicorn with gunicorn.conf.py: the application answers past its limits, in the error body."""

    @pytest.mark.parametrize("path", REGISTRY_PATHS)
    def test_registry_routes_answer_over_the_limits_with_the_oci_body(self, server, path):
        status, headers, body = get(server, path + "?pad=" + "a" * 5000)
        error = assert_oci_error(status, headers, body, 414, path)
        assert error["message"].startswith("Request line too long: ")
        status, headers, body = get(server, path, [("X-Pad", "a" * 9000)])
        error = assert_oci_error(status, headers, body, 431, path)
        assert error["message"].startswith("Request header X-Pad too large: 9007 bytes")
        assert headers["X-Request-Id"]

    def test_request_line_over_4_kib_is_414_with_the_error_body(self, server):
        """The issue's example: a request line over 4 KiB got gunicorn's own HTML 414 (its limit was 4094)."""
        status, _, body = get(server, "/healthz?pad=" + "a" * (4096 - LINE_OVERHEAD - len("/healthz?pad=")))
        assert (status, json.loads(body)) == (200, {"status": "ok"})  # exactly 4 KiB is served
        for length in (4097, 8000):  # just over the application's limit; still under gunicorn's (8190)
            target = "/healthz?pad=" + "a" * (length - LINE_OVERHEAD - len("/healthz?pad="))
            status, headers, body = get(server, target)
            payload = assert_swr_error((status, headers, body), 414, REQUEST_LINE_TOO_LONG)
            assert f"{length} bytes" in payload["error_msg"]
            assert "4096" in payload["error_msg"]
            assert headers["X-Request-Id"]

    def test_header_of_9_kb_is_431_with_the_error_body(self, server):
        """The issue's example: a 9 KB header got gunicorn's own HTML 431 (its limit was 8190 bytes a line)."""
        status, _, _ = get(server, "/healthz", [("X-Pad", "a" * (8192 - len("X-Pad: ")))])
        assert status == 200  # a header of exactly 8 KiB is served
        for size in (9000, 16000):  # over the application's limit; under gunicorn's (16 KiB)
            status, headers, body = get(server, "/healthz", [("X-Pad", "a" * (size - len("X-Pad: ")))])
            payload = assert_swr_error((status, headers, body), 431, HEADERS_TOO_LARGE)
            assert payload["error_msg"].startswith(f"Request header X-Pad too large: {size} bytes")
            assert payload["details"] == [{"field": "X-Pad", "error_msg": payload["details"][0]["error_msg"]}]

    def test_more_than_100_headers_is_431_with_the_error_body(self, server):
        """A sibling: gunicorn refused a 101st header with its own HTML 431."""
        extra = [(f"X-H{i}", "1") for i in range(98)]  # with Host and Accept-Encoding: 100
        assert get(server, "/healthz", extra)[0] == 200
        status, headers, body = get(server, "/healthz", [*extra, ("X-H98", "1")])
        payload = assert_swr_error((status, headers, body), 431, HEADERS_TOO_LARGE)
        assert payload["error_msg"] == "Too many request headers: 101; the limit is 100."


def assert_oci_error(status, headers, body, want_status: int, path: str) -> dict:
    """The registry's answer to a request over a limit on ``path``: ``want_status``, exactly the OCI error body
    with code UNSUPPORTED, and the API version header under /v2/ only (the token endpoint sends none)."""
    assert status == want_status, (path, status, body[:300])
    assert headers["Content-Type"].startswith("application/json")
    if path.startswith("/v2/"):
        assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    else:
        assert "Docker-Distribution-API-Version" not in headers
    payload = json.loads(body)
    assert set(payload) == {"errors"}, payload
    [error] = payload["errors"]
    assert error["code"] == "UNSUPPORTED", payload
    assert isinstance(error["message"], str)
    return error


class TestMiddleware:
    """The same limits without gunicorn (any WSGI server): Django's test client."""

    @pytest.mark.parametrize("path", MANAGEMENT_PATHS)
    def test_long_request_line(self, client, path):
        response = client.get(path, {"pad": "a" * 5000})
        assert_swr_error(response, 414, REQUEST_LINE_TOO_LONG)
        assert "Docker-Distribution-API-Version" not in response.headers

    @pytest.mark.parametrize("path", MANAGEMENT_PATHS)
    def test_large_header_names_every_large_header(self, client, path):
        response = client.get(path, HTTP_X_ONE="a" * 9000, HTTP_X_TWO="b" * 9000, HTTP_X_THREE="ok")
        body = assert_swr_error(response, 431, HEADERS_TOO_LARGE)
        assert sorted(detail["field"] for detail in body["details"]) == ["X-One", "X-Two"]
        assert "Docker-Distribution-API-Version" not in response.headers

    def test_large_header_on_an_api_call_is_answered_before_authentication(self, client):
        response = client.post(
            "/v2/manage/namespaces", {}, content_type="application/json", HTTP_X_AUTH_TOKEN="x" * 9000
        )
        assert response.status_code == 431
        assert response.json()["details"][0]["field"] == "X-Auth-Token"

    @pytest.mark.parametrize("path", MANAGEMENT_PATHS)
    def test_too_many_headers(self, client, path):
        headers = {f"HTTP_X_H{i}": "1" for i in range(101)}
        assert_swr_error(client.get(path, **headers), 431, HEADERS_TOO_LARGE)

    @pytest.mark.parametrize("path", REGISTRY_PATHS)
    def test_registry_routes_answer_with_the_oci_body(self, client, path):
        """The registry's clients read the OCI body (spec section 9), not SWR's, with the same message."""
        response = client.get(path, {"pad": "a" * 5000})
        error = assert_oci_error(response.status_code, response.headers, response.content, 414, path)
        assert error["message"].startswith("Request line too long: ")
        assert "detail" not in error
        response = client.get(path, HTTP_X_ONE="a" * 9000, HTTP_X_TWO="b" * 9000)
        error = assert_oci_error(response.status_code, response.headers, response.content, 431, path)
        assert error["message"].startswith("Request header X-One too large: ")
        assert sorted(detail["field"] for detail in error["detail"]) == ["X-One", "X-Two"]
        headers = {f"HTTP_X_H{i}": "1" for i in range(101)}
        response = client.get(path, **headers)
        error = assert_oci_error(response.status_code, response.headers, response.content, 431, path)
        assert error["message"].startswith("Too many request headers: ")
