"""Request head limits answer with the SWR error body (spec section 1: 414 SVCSTG.SWR.4141001, 431 SVCSTG.SWR.4311001).

The application's limits (swr.middleware.RequestHeadLimitMiddleware): a
request line of at most 4 KiB, a header (``Name: value``) of at most 8 KiB, at
most 100 headers. gunicorn's own limits (gunicorn.conf.py) lie above them, so
that in the production setup a request just past a limit is answered by the
application, not by gunicorn's plain page. Over HTTP against gunicorn with
the production configuration, and through Django's test client.
"""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from .helpers import assert_swr_error

pytestmark = pytest.mark.django_db

REQUEST_LINE_TOO_LONG = "SVCSTG.SWR.4141001"
HEADERS_TOO_LARGE = "SVCSTG.SWR.4311001"
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


class TestMiddleware:
    """The same limits without gunicorn (any WSGI server): Django's test client."""

    def test_long_request_line(self, client):
        assert_swr_error(client.get("/healthz", {"pad": "a" * 5000}), 414, REQUEST_LINE_TOO_LONG)

    def test_large_header_names_every_large_header(self, client):
        response = client.get("/healthz", HTTP_X_ONE="a" * 9000, HTTP_X_TWO="b" * 9000, HTTP_X_THREE="ok")
        body = assert_swr_error(response, 431, HEADERS_TOO_LARGE)
        assert sorted(detail["field"] for detail in body["details"]) == ["X-One", "X-Two"]

    def test_large_header_on_an_api_call_is_answered_before_authentication(self, client):
        response = client.post(
            "/v2/manage/namespaces", {}, content_type="application/json", HTTP_X_AUTH_TOKEN="x" * 9000
        )
        assert response.status_code == 431
        assert response.json()["details"][0]["field"] == "X-Auth-Token"

    def test_too_many_headers(self, client):
        headers = {f"HTTP_X_H{i}": "1" for i in range(101)}
        assert_swr_error(client.get("/healthz", **headers), 431, HEADERS_TOO_LARGE)
