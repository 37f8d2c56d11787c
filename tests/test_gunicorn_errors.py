"""Requests that gunicorn's HTTP parser refuses get the SWR error body, not gunicorn's HTML (issue 11, spec section 1).

The production setup (gunicorn.conf.py) runs its workers from
registry/gunicorn_workers.py: gunicorn's own, whose answer to a request it
refuses before the application runs is the JSON error body with an
X-Request-Id. Each malformed request below is sent as raw bytes over a socket
to gunicorn started with the production configuration: with the default gevent
workers and with GUNICORN_WORKER_CLASS=sync. Before the change each got
gunicorn's text/html "Bad Request" (or its 414/431/417/501) page.
"""

import http.client
import io
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
