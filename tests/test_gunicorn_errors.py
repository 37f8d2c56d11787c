"""Requests that gunicorn's HTTP parser refuses get the service's error body, not gunicorn's HTML (issue 11).

The production setup (gunicorn.conf.py) runs its workers from
registry/gunicorn_workers.py: gunicorn's own, whose answer to a request it
refuses before the application runs is the JSON error body with an
X-Request-Id: the SWR body (spec section 1), or on the registry's routes
(/v2/ and /v2/<name>/..., /service/token) the OCI body (spec section 9), as
the application answers there. Each malformed request below is sent as raw
bytes over a socket to gunicorn started with the production configuration:
with the default gevent workers and with GUNICORN_WORKER_CLASS=sync. Before
the change each got gunicorn's text/html "Bad Request" (or its 414/431/417/501)
page; before the OCI change, the SWR body on the registry's routes too.
"""

import http.client
import io
import json
import re
import socket
from urllib.parse import urlsplit

import pytest

from .helpers import assert_swr_error, start_gunicorn

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

MALFORMED = "SVCSTG.SWR.4000014"
REQUEST_LINE_TOO_LONG = "SVCSTG.SWR.4141001"
HEADERS_TOO_LARGE = "SVCSTG.SWR.4311001"
EXPECTATION_FAILED = "SVCSTG.SWR.4171001"
TRANSFER_CODING_NOT_IMPLEMENTED = "SVCSTG.SWR.5011001"


@pytest.fixture(scope="module", params=["gevent", "sync"])
def gunicorn(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn with gunicorn.conf.py (GUNICORN_WORKER_CLASS as the parameter), serving the test database;
    (host, port), and the path of its log."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with start_gunicorn(log_path, workers=1, worker_class=request.param) as base:
        url = urlsplit(base)
        yield (url.hostname, url.port), log_path


def exchange(address, raw: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send ``raw`` on a new connection and read the answer until the server closes it; (status, headers, body)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            raise AssertionError(f"no end of answer within 10 s; got {data[:500]!r}") from None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, _, header_lines = head.partition(b"\r\n")
    headers = http.client.parse_headers(io.BytesIO(header_lines + b"\r\n\r\n"))
    return int(status_line.split(b" ")[1]), headers, body


def request(head: str | bytes, body: bytes = b"") -> bytes:
    """A request: ``head`` (request line and headers, lines ending in CRLF) then the blank line and ``body``."""
    head = head.encode("latin-1") if isinstance(head, str) else head
    return head + b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n" + body


CASES = {
    "NUL in a header value": (request(b"GET /healthz HTTP/1.1\r\nX-Auth-Token: a\x00b\r\n"), 400, MALFORMED),
    "vertical tab in a header value": (request(b"GET /healthz HTTP/1.1\r\nX-Auth-Token: a\x0bb\r\n"), 400, MALFORMED),
    "space before the colon": (request("GET /healthz HTTP/1.1\r\nX-Auth-Token : x\r\n"), 400, MALFORMED),
    "Content-Length 1_0": (request("POST /v3/auth/tokens HTTP/1.1\r\nContent-Length: 1_0\r\n"), 400, MALFORMED),
    "Content-Length -1": (request("POST /v3/auth/tokens HTTP/1.1\r\nContent-Length: -1\r\n"), 400, MALFORMED),
    "Content-Length +2": (request("POST /v3/auth/tokens HTTP/1.1\r\nContent-Length: +2\r\n", b"{}"), 400, MALFORMED),
    "two Content-Length headers": (
        request("POST /v3/auth/tokens HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
        400,
        MALFORMED,
    ),
    "Content-Length beside chunked": (
        request("POST /v3/auth/tokens HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
        MALFORMED,
    ),
    "folded header line": (request("GET /healthz HTTP/1.1\r\nX-Note: a\r\n  b\r\n"), 400, MALFORMED),
    "Transfer-Encoding identity": (
        request("POST /v3/auth/tokens HTTP/1.1\r\nTransfer-Encoding: identity\r\n"),
        400,
        MALFORMED,
    ),
    "chunked twice": (
        request("POST /v3/auth/tokens HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"),
        400,
        MALFORMED,
    ),
    "invalid chunk size": (
        request(
            "POST /v3/auth/tokens HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n",
            b"zz\r\n{}\r\n0\r\n\r\n",
        ),
        400,
        MALFORMED,
    ),
    "byte 0x80 or above in the request target": (request(b"GET /healthz\xff HTTP/1.1\r\n"), 400, MALFORMED),
    "HTTP/2.0 request line": (request("GET /healthz HTTP/2.0\r\n"), 400, MALFORMED),
    "bad request line": (request("GET /healthz HTTP/1.1 extra\r\n"), 400, MALFORMED),
    "lower-case method": (request("get /healthz HTTP/1.1\r\n"), 400, MALFORMED),
    "request line over gunicorn's limit (8190)": (
        request(f"GET /healthz?q={'a' * 9000} HTTP/1.1\r\n"),
        414,
        REQUEST_LINE_TOO_LONG,
    ),
    "header over gunicorn's limit (16 KiB)": (
        request(f"GET /healthz HTTP/1.1\r\nX-Big: {'a' * 17000}\r\n"),
        431,
        HEADERS_TOO_LARGE,
    ),
    "more headers than gunicorn's limit (128)": (
        request("GET /healthz HTTP/1.1\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(130))),
        431,
        HEADERS_TOO_LARGE,
    ),
    "unknown Expect": (request("GET /healthz HTTP/1.1\r\nExpect: teapot\r\n"), 417, EXPECTATION_FAILED),
    "unknown transfer coding": (
        request("POST /v3/auth/tokens HTTP/1.1\r\nTransfer-Encoding: foo\r\n"),
        501,
        TRANSFER_CODING_NOT_IMPLEMENTED,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_request_gunicorn_refuses_gets_the_error_body(gunicorn, case):
    """Status as gunicorn decides it; the SWR error body in JSON, an X-Request-Id, the connection closed."""
    address, log_path = gunicorn
    raw, want_status, want_code = CASES[case]
    status, headers, body = exchange(address, raw)
    payload = assert_swr_error((status, headers, body), want_status, want_code)
    assert headers["content-type"] == "application/json", body[:300]
    assert b"<html" not in body.lower()
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    assert payload["details"] == []
    if want_status == 400:
        assert payload["error_msg"].startswith("Malformed HTTP request: ")
    request_id = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    # The warning line names the request id (gunicorn writes its log line before the answer).
    assert f"(request id {request_id})" in log_path.read_text(errors="replace")


def test_normal_requests_still_work(gunicorn):
    """A well-formed request reaches the application: /healthz answers 200; an unknown URL the application's
    404 error body; a JSON body with Content-Length is read (and refused by the application, in JSON)."""
    address, _ = gunicorn
    status, headers, body = exchange(address, request("GET /healthz HTTP/1.1\r\n"))
    assert status == 200, body[:300]
    assert_swr_error(exchange(address, request("GET /v2/manage/nothing-here HTTP/1.1\r\n")), 404, "SVCSTG.SWR.4040083")
    head = "POST /v3/auth/tokens HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    status, headers, body = exchange(address, request(head, b"{}"))
    assert 400 <= status < 500, body[:300]
    assert headers["content-type"] == "application/json", body[:300]


# The registry's routes (spec section 9) and the OCI code of gunicorn's refusals there
# (registry.gunicorn_workers.answer_body): a 4xx is UNSUPPORTED, as the registry answers a malformed query
# parameter (a malformed request is not a NAME_INVALID), a 5xx UNKNOWN.
REGISTRY_PATHS = ("/v2/", "/v2/org/repo/blobs/uploads/", "/v2/org/repo/manifests/latest", "/service/token")
OCI_CODE = {400: "UNSUPPORTED", 414: "UNSUPPORTED", 417: "UNSUPPORTED", 431: "UNSUPPORTED", 501: "UNKNOWN"}
# Paths of the management API, whose answers keep the SWR body: /v2 itself, /v2/manage/... (also spelt with
# a percent-encoded letter, which the application decodes), /v3/...
MANAGEMENT_PATHS = ("/v2", "/v2/manage/namespaces", "/v2/%6danage/namespaces", "/v3/auth/tokens")
# Cases whose request line gunicorn refuses (or cannot read whole): the path is unknown, the SWR body stays.
PATH_UNKNOWN = (
    "byte 0x80 or above in the request target",
    "lower-case method",
    "request line over gunicorn's limit (8190)",
)
# A bad chunk is found while the application reads the body: the application answers it (on the registry's routes).
PATH_KNOWN = [case for case in CASES if case not in PATH_UNKNOWN and case != "invalid chunk size"]


def on_path(raw: bytes, path: str) -> bytes:
    """The request ``raw`` sent to ``path`` instead of its own (/healthz or /v3/auth/tokens)."""
    method, _, rest = raw.partition(b" ")
    for target in (b"/healthz", b"/v3/auth/tokens"):
        if rest.startswith(target):
            return method + b" " + path.encode() + rest[len(target) :]
    raise AssertionError(f"no known path in {raw[:80]!r}")


def assert_oci_error(answer, status: int, code: str, path: str) -> dict:
    """The answer to a refused request on a registry route: ``status``, the OCI error body with ``code`` and
    gunicorn's message, the connection closed, an X-Request-Id; under /v2/ the registry's API version header."""
    got, headers, body = answer
    assert got == status, (path, got, body[:300])
    assert headers["content-type"] == "application/json", body[:300]
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    if path.startswith("/v2/"):
        assert headers["docker-distribution-api-version"] == "registry/2.0"
    else:  # the token endpoint's own answers carry none
        assert "docker-distribution-api-version" not in headers
    payload = json.loads(body)
    assert set(payload) == {"errors"}, (path, payload)
    [error] = payload["errors"]
    assert error["code"] == code, (path, payload)
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.mark.parametrize("case", PATH_KNOWN)
def test_registry_routes_get_the_oci_body(gunicorn, case):
    """On the registry's routes the refusal carries the OCI body with the code the application gives its status,
    and the message the SWR body carries elsewhere; on the management API's paths the SWR body stays."""
    address, log_path = gunicorn
    raw, want_status, want_code = CASES[case]
    messages = set()
    for path in MANAGEMENT_PATHS:
        status, headers, body = exchange(address, on_path(raw, path))
        payload = assert_swr_error((status, headers, body), want_status, want_code)
        assert "docker-distribution-api-version" not in headers
        messages.add(payload["error_msg"])
    for path in REGISTRY_PATHS:
        answer = exchange(address, on_path(raw, path))
        error = assert_oci_error(answer, want_status, OCI_CODE[want_status], path)
        if want_status == 400:
            assert error["message"].startswith("Malformed HTTP request: ")
        messages.add(error["message"])
        assert f"(request id {answer[1]['x-request-id']})" in log_path.read_text(errors="replace")
    assert len(messages) == 1, messages  # the same text in both bodies


@pytest.mark.parametrize("case", PATH_UNKNOWN)
def test_registry_route_with_unreadable_request_line_keeps_the_swr_body(gunicorn, case):
    """A request line gunicorn cannot read names no path: the SWR body, even when the path is a registry route;
    the same request line with a path gunicorn could read and a bad header gets the OCI body."""
    address, _ = gunicorn
    raw, want_status, want_code = CASES[case]
    for path in REGISTRY_PATHS[:2]:
        assert_swr_error(exchange(address, on_path(raw, path)), want_status, want_code)
        readable = request(f"GET {path} HTTP/1.1\r\nX-Note: a\r\n  b\r\n")  # a folded header line
        assert_oci_error(exchange(address, readable), 400, "UNSUPPORTED", path)


@pytest.mark.parametrize(("status", "code"), [*OCI_CODE.items(), (403, "DENIED"), (500, "UNKNOWN")])
def test_answer_body_codes_on_a_registry_route(status, code):
    """Every status the worker answers, including those no request here can provoke (403 needs the PROXY
    protocol or TLS; 500 a fault of gunicorn): its OCI code on a registry route, the SWR body elsewhere."""
    from registry.gunicorn_workers import answer_body  # noqa: PLC0415 (imports gunicorn's workers)

    body, headers = answer_body("/v2/org/repo/manifests/latest", status, "SVCSTG.SWR.4000014", "the message")
    assert body == {"errors": [{"code": code, "message": "the message"}]}
    assert headers == (("Docker-Distribution-API-Version", "registry/2.0"),)
    body, headers = answer_body("/v2/manage/namespaces", status, "SVCSTG.SWR.4000014", "the message")
    assert body["error_code"] == "SVCSTG.SWR.4000014"
    assert headers == ()


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "compress, chunked"])
@pytest.mark.parametrize("path", ["/v3/auth/tokens", "/v2/org/repo/blobs/uploads/"])
def test_a_compressed_transfer_coding_gunicorn_passes_on_is_refused_501(gunicorn, coding, path):
    """gunicorn takes gzip, deflate and compress before chunked and hands the body on still encoded (a blob
    would be stored compressed): the application refuses it, 501 (RFC 9112 section 6.1), in the body of the path
    (SWR's; the OCI body with UNKNOWN on the registry's routes, as for a coding gunicorn refuses itself)."""
    address, _ = gunicorn
    head = f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: {coding}\r\n"
    status, headers, body = exchange(address, request(head, b"2\r\n{}\r\n0\r\n\r\n"))
    if headers.get("transfer-encoding") == "chunked":
        body = dechunked(body)
    answer = status, headers, body
    assert status == 501, body[:300]
    assert headers["content-type"] == "application/json"
    message = coding.split(",")[0]
    if path.startswith("/v2/"):
        [error] = json.loads(body)["errors"]
        assert error["code"] == "UNKNOWN"
        assert f"Transfer-Encoding '{message}' is not supported" in error["message"]
    else:
        payload = assert_swr_error(answer, 501, "SVCSTG.SWR.5011001")
        assert "'Transfer-Encoding: chunked' alone" in payload["error_msg"]


def dechunked(body: bytes) -> bytes:
    """The bytes of a chunked response body."""
    data = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return data
        data, body = data + body[:size], body[size + 2 :]
