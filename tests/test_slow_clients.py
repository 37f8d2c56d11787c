"""Slow clients do not stop the production setup (issue 11, must-have 9).

gunicorn runs with its production configuration (gunicorn.conf.py: gevent
workers, a database pool per worker, the body read before a database
connection is taken), with one worker, so that every slow client and every
probe share it: with more workers the kernel spreads the connections, and a
probe could land on a worker that no slow client reached. Twenty slow clients
of one kind hold their connections open while, round after round, /healthz and
a create with a token must each answer within 2 seconds.
"""

import base64
import contextlib
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection

from .helpers import assert_swr_error, database_url, http_request, start_gunicorn

SLOW_CLIENTS = 20
ROUNDS = 5
ANSWER_WITHIN = 2.0  # seconds


@pytest.fixture(scope="module")
def one_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn with gunicorn.conf.py and one worker, serving the test database; its base URL."""
    with start_gunicorn(tmp_path_factory.mktemp("gunicorn") / "server.log", workers=1) as base:
        yield base


def _basic(token: str) -> str:
    """The Authorization value of alice's Basic credentials with her API token as the password."""
    return "Basic " + base64.b64encode(f"alice:{token}".encode()).decode()


def call(url, method="GET", body=None, token=None):
    """One request on a new connection, with a 2 s time limit; (status, body, seconds); status None: no answer."""
    started = time.monotonic()
    try:
        status, _, content = http_request(url, method, body=body, token=token, timeout=ANSWER_WITHIN)
    except TimeoutError:
        status, content = None, b"no answer"
    return status, content, time.monotonic() - started


class SlowClient:
    """A connection that sends part of a request, then one more byte at each ``step()``, never all of it."""

    def __init__(self, base, kind, token):
        url = urlsplit(base)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=5)
        self.rest = b""
        if kind == "idle":  # connects and sends nothing
            return
        path = "/v2/manage/namespaces/group/repos" if kind == "slow body, valid token" else "/v3/auth/tokens"
        method, credentials = "POST", f"X-Auth-Token: {token}"
        if kind == "slow registry chunk, Basic credentials":
            # A registry route checks Basic credentials in the database, then reads a small body whole before its
            # first query: the connection the credentials took must not wait for the body with it.
            path, method = f"/v2/group/app/blobs/uploads/{uuid.uuid4()}", "PATCH"
            credentials = f"Authorization: {_basic(token)}"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n{credentials}\r\n"
        ).encode()
        if kind == "slow headers":
            self.sock.sendall(head[:20])
            self.rest = head[20:]
        else:  # announces 100 bytes of body and sends one; more come one by one
            self.sock.sendall(head + b"\r\n{")
            self.rest = b" " * 90

    def step(self):
        if self.rest:
            with contextlib.suppress(OSError):  # the server may have closed a slow head: that is its right
                self.sock.sendall(self.rest[:1])
            self.rest = self.rest[1:]

    def close(self):
        """Close the client's side, then wait (up to 5 s) until the server has answered and closed its own: a
        request it still served would otherwise read the database while the test's teardown empties it (on
        PostgreSQL, the two deadlocked, and the teardown could lose)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(5)
            while self.sock.recv(65536):
                pass
        self.sock.close()


@pytest.mark.parametrize(
    "kind",
    [
        "slow body, no credentials",
        "slow body, valid token",
        "slow registry chunk, Basic credentials",
        "slow headers",
        "idle",
    ],
)
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_health_checks_and_creates_answer_while_slow_clients_hold_connections(one_worker, namespace, token, kind):
    """The issue's example: ten connections that announced a 100-byte body and sent one byte stopped /healthz for
    over 20 s. With a token, a slow body would also hold a database connection of the worker's pool if the body
    were read after authentication; slow headers and idle connections are its siblings."""
    clients = []
    try:
        clients = [SlowClient(one_worker, kind, token) for _ in range(SLOW_CLIENTS)]
        time.sleep(0.3)  # the worker has taken them all in
        answers = []
        for round_ in range(ROUNDS):
            for client in clients:
                client.step()
            answers.append(("healthz", *call(f"{one_worker}/healthz")))
            answers.append(
                (
                    "create",
                    *call(
                        f"{one_worker}/v2/manage/namespaces/group/repos",
                        "POST",
                        {"repository": f"r{round_}", "is_public": False},
                        token,
                    ),
                )
            )
            time.sleep(0.3)
        slow = [(what, status, round(seconds, 2)) for what, status, _, seconds in answers if seconds >= ANSWER_WITHIN]
        assert not slow, f"answered late or not at all: {slow}"
        assert [(what, status) for what, status, _, _ in answers] == [("healthz", 200), ("create", 201)] * ROUNDS, (
            answers
        )
    finally:
        for client in clients:
            client.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite waits for its lock inside SQLite, not in gevent")
def test_a_request_waiting_for_the_database_does_not_stop_its_worker(one_worker, namespace, token):
    """psycopg waits for PostgreSQL through gevent: while a create waits for a lock, the same worker answers others.

    Guards the loading order of gunicorn.conf.py: psycopg picks how it waits when it is imported, so an
    application loaded before gevent patches the standard library (preload_app) would block the whole worker.
    """
    result = {}

    def create():
        url = f"{one_worker}/v2/manage/namespaces/group/repos"
        result["create"] = http_request(url, body={"repository": "waits", "is_public": False}, token=token, timeout=15)

    with psycopg.connect(database_url()) as locker:
        locker.execute("LOCK TABLE swr_repository IN ACCESS EXCLUSIVE MODE")
        waiting = threading.Thread(target=create)
        waiting.start()
        time.sleep(0.5)  # the create is waiting for the lock
        assert waiting.is_alive(), result
        for _ in range(3):
            for path, want in (("/healthz", 200), ("/readyz", 200)):
                status, _, seconds = call(f"{one_worker}{path}")
                assert (status, seconds < ANSWER_WITHIN) == (want, True), (path, status, seconds)
        locker.rollback()  # releases the lock
    waiting.join(timeout=15)
    assert result["create"][0] == 201, result


class BrokenStream:
    """A request body whose connection fails while it is read."""

    def read(self, *args):
        raise ConnectionResetError("connection reset by peer")

    readline = read


@pytest.mark.django_db
def test_a_body_cut_off_by_the_network_is_a_400_not_a_500(client):
    """A sibling: the body is read before the view, and a connection lost while reading it is the client's doing."""
    response = client.generic(
        "POST",
        "/v3/auth/tokens",
        b"",
        content_type="application/json",
        CONTENT_LENGTH="100",
        **{"wsgi.input": BrokenStream()},
    )
    assert_swr_error(response, 400, "SVCSTG.SWR.4000014")


def _raw_exchange(base: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as it is on a new connection and half-close it (the client sends nothing more); the
    answer's status and body (de-chunked)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"\r\ntransfer-encoding: chunked" in head.lower():
        chunks = b""
        while (size := int(body.split(b"\r\n", 1)[0], 16)) > 0:
            start = body.index(b"\r\n") + 2
            chunks, body = chunks + body[start : start + size], body[start + size + 2 :]
        body = chunks
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "body",
    [b"1000\r\n" + b"x" * 2500, b"zz\r\nxx\r\n0\r\n\r\n", b"4\r\nxxxxyy0\r\n\r\n"],
    ids=["broken off in a chunk", "bad chunk size", "chunk without its CRLF"],
)
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_body_broken_off_or_malformed_is_a_400(one_worker, namespace, token, body):
    """A blob's chunked body that the connection breaks off, or whose chunks are framed wrongly, is the client's
    fault: 400 SIZE_INVALID in the OCI body, not a 500 (gunicorn's reader raises its own exceptions for it)."""
    basic = _basic(token)
    netloc = urlsplit(one_worker).netloc
    path = _start_upload(one_worker, basic)
    status, answer = _raw_exchange(
        one_worker,
        f"PATCH {path} HTTP/1.1\r\nHost: {netloc}\r\nAuthorization: {basic}\r\n"
        f"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + body,
    )
    assert status == 400, answer
    assert json.loads(answer)["errors"][0]["code"] == "SIZE_INVALID", answer


def _start_upload(base: str, basic: str) -> str:
    """A new upload session of group/app (the push creates the repository); its Location path."""
    answer = http_request(
        f"{base}/v2/group/app/blobs/uploads/", "POST", raw=b"", headers={"Authorization": basic}, timeout=10
    )
    assert answer.status == 202, answer
    return answer.headers["Location"]


def _upload_offset(base: str, path: str, basic: str) -> str:
    answer = http_request(f"{base}{path}", headers={"Authorization": basic}, timeout=10)
    assert answer.status == 204, answer
    return answer.headers["Range"]


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [],
    }
).encode()


@pytest.mark.parametrize(
    ("request_line", "announced", "body"),
    [
        ("PATCH {upload}", 100, b"x" * 10),  # a chunk, read whole before the first query
        ("PATCH {upload}", 3 * 1024 * 1024, b"x" * 1000),  # a chunk over SWR_MAX_BODY_BYTES, streamed
        ("PUT {upload}&digest=sha256:" + "0" * 64, 100, b"x" * 10),  # the last chunk with the digest
        ("POST /v2/group/app/blobs/uploads/?digest=sha256:" + "0" * 64, 100, b"x" * 10),  # a monolithic push
        ("PUT /v2/group/app/manifests/v1", len(MANIFEST) + 10, MANIFEST),  # a whole manifest, and more announced
        ("PUT /v2/group/app/manifests/v1", 2 * 1024 * 1024, MANIFEST),  # a manifest over SWR_MAX_BODY_BYTES
    ],
    ids=["small chunk", "large chunk", "last chunk", "monolithic", "manifest", "large manifest"],
)
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_registry_body_shorter_than_its_content_length_is_a_400_and_stores_nothing(
    one_worker, namespace, token, request_line, announced, body
):
    """A client that announces a body and closes its side of the connection before sending all of it has not
    sent the request (RFC 9112 section 6.3: the message is incomplete): 400 SIZE_INVALID, whatever part came is
    not stored as a chunk, a blob or a manifest, and the session goes on where it was."""
    basic = _basic(token)
    upload = _start_upload(one_worker, basic)
    method, path = request_line.format(upload=upload).split(" ", 1)
    netloc = urlsplit(one_worker).netloc
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {netloc}\r\nAuthorization: {basic}\r\nContent-Length: {announced}\r\n"
        f"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    status, answer = _raw_exchange(one_worker, head.encode() + body)
    assert status == 400, answer
    error = json.loads(answer)["errors"][0]
    assert error["code"] == "SIZE_INVALID", error
    assert f"after {len(body)} of its {announced} bytes" in error["message"], error
    assert _upload_offset(one_worker, upload, basic) == "0-0"
    manifest = http_request(f"{one_worker}/v2/group/app/manifests/v1", headers={"Authorization": basic}, timeout=10)
    assert manifest.status == 404, manifest


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_management_body_shorter_than_its_content_length_is_a_400_and_creates_nothing(one_worker, namespace, token):
    """The management API's sibling: a complete JSON document with more bytes announced than sent is not a
    request (the middleware that reads bodies first answers it, before authentication reads the database)."""
    body = json.dumps({"repository": "cut", "is_public": False}).encode()
    netloc = urlsplit(one_worker).netloc
    status, answer = _raw_exchange(
        one_worker,
        f"POST /v2/manage/namespaces/group/repos HTTP/1.1\r\nHost: {netloc}\r\nX-Auth-Token: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 5}\r\n\r\n".encode()
        + body,
    )
    assert status == 400, answer
    error = json.loads(answer)
    assert error["error_code"] == "SVCSTG.SWR.4000014", error
    assert f"after {len(body)} of its {len(body) + 5} bytes" in error["error_msg"], error
    listed = http_request(f"{one_worker}/v2/manage/namespaces/group/repos/cut", token=token, timeout=10)
    assert listed.status == 404, listed


@pytest.mark.parametrize("says_end", [99, None], ids=["Content-Range says less", "Content-Range matches"])
@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_large_chunked_patch_must_end_where_its_content_range_says(one_worker, namespace, token, says_end):
    """A chunk sent with Transfer-Encoding: chunked and over SWR_MAX_BODY_BYTES is streamed, its length known only
    once it is stored: a Content-Range that does not end where its bytes end is RANGE_INVALID (416), as it is for a
    body with a Content-Length, and the part is not kept."""
    basic = _basic(token)
    upload = _start_upload(one_worker, basic)
    size = 1536 * 1024
    end = size - 1 if says_end is None else says_end
    netloc = urlsplit(one_worker).netloc
    body = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in [b"y" * 65536] * (size // 65536))
    status, answer = _raw_exchange(
        one_worker,
        f"PATCH {upload} HTTP/1.1\r\nHost: {netloc}\r\nAuthorization: {basic}\r\nContent-Range: 0-{end}\r\n"
        f"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + body
        + b"0\r\n\r\n",
    )
    if says_end is None:
        assert status == 202, answer
        assert _upload_offset(one_worker, upload, basic) == f"0-{size - 1}"
    else:
        assert status == 416, answer
        assert json.loads(answer)["errors"][0]["code"] == "RANGE_INVALID", answer
        assert _upload_offset(one_worker, upload, basic) == "0-0"
