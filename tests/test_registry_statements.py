"""SQL statements per request of a layer's push and pull, as skopeo, docker and containerd make them (spec
section 9; issue 14's benchmark against CNCF distribution, which keeps no database: this service's cost per
layer is mostly its round trips to PostgreSQL, bench/pushpull.py and docs/performance.md).

One layer of a push, with a bearer token of /service/token (checked by its signature, no credential read):
HEAD the blob (404), POST an upload, PATCH its bytes, PUT ?digest=; a pull: HEAD and GET. Counted: the
statements a request sends, without the transaction's own (BEGIN/COMMIT in production, savepoints here).
"""

import base64
import hashlib
import os
import urllib.parse

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def client(owner, namespace):
    """alice's client with a bearer token for group/app (pull, push), as a registry client holds one."""
    owner.set_password(PASSWORD)
    owner.save()
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    query = urllib.parse.urlencode({"service": "testserver", "scope": "repository:group/app:pull,push"})
    response = Client().get(f"/service/token?{query}", HTTP_AUTHORIZATION=basic)
    assert response.status_code == 200, response.content
    return Client(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")


def statements(call) -> tuple[object, list[str]]:
    """The answer of ``call()`` and the SQL it sent, transaction markers left out."""
    with CaptureQueriesContext(connection) as captured:
        response = call()
    sent = [query["sql"] for query in captured.captured_queries]
    return response, [sql for sql in sent if not sql.upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def push_layer(client, data: bytes) -> tuple[str, dict[str, list[str]]]:
    """Push ``data`` as a layer of group/app the way skopeo does; its digest and the statements per step."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sent = {}
    response, sent["HEAD"] = statements(lambda: client.head(f"/v2/group/app/blobs/{digest}"))
    assert response.status_code == 404
    response, sent["POST"] = statements(lambda: client.post("/v2/group/app/blobs/uploads/"))
    assert response.status_code == 202, response.content
    location = response["Location"]
    response, sent["PATCH"] = statements(
        lambda: client.patch(location, data=data, content_type="application/octet-stream")
    )
    assert response.status_code == 202, response.content
    assert response["Range"] == f"0-{len(data) - 1}"
    response, sent["PUT"] = statements(lambda: client.put(f"{response['Location']}?digest={digest}"))
    assert response.status_code == 201, response.content
    return digest, sent


def test_a_layer_push_is_a_few_statements_per_request(client):
    push_layer(client, os.urandom(1000))  # the first push creates the repository
    _, sent = push_layer(client, os.urandom(1000))  # bytes that no test stored before
    counts = {step: len(sql) for step, sql in sent.items()}
    # HEAD: none, as the folder lacks the blob's bytes (one query on the link otherwise: see the pull's test).
    # POST: one INSERT that finds the repository by its names (abandoned sessions are the garbage collector's).
    # PATCH of a chunk read whole: one UPDATE that finds the live session of the repository by its names and
    # records the part.
    assert {step: counts[step] for step in ("HEAD", "POST", "PATCH")} == {"HEAD": 0, "POST": 1, "PATCH": 1}, sent
    assert sent["POST"][0].startswith("INSERT"), sent["POST"]
    assert sent["PATCH"][0].startswith("UPDATE"), sent["PATCH"]
    # PUT without a body: one UPDATE finds the live session of the repository by its names and marks it with the
    # digest (what the garbage collector keeps, swr/distribution/gc.py; on PostgreSQL the same statement takes
    # the digest's advisory lock, SQLite's write lock does that work); then the blob and its link
    # (services._link: the blob's row, created without looking for one as the upload stored its bytes; its
    # link, whose foreign key holds the repository; the repository's size; the end of the session): on
    # PostgreSQL one statement of data-modifying WITH clauses, on SQLite (which has none) four.
    assert counts["PUT"] == (2 if connection.vendor == "postgresql" else 5), sent
    assert sent["PUT"][0].startswith(("UPDATE", "WITH")), sent["PUT"]
    assert not [sql for sql in sent["PUT"] if "swr_upload" in sql and sql.startswith("SELECT")], sent["PUT"]


def test_a_layer_pull_is_one_statement(client):
    data = b"a layer" * 100
    digest, _ = push_layer(client, data)
    response, sent = statements(lambda: client.head(f"/v2/group/app/blobs/{digest}"))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert len(sent) == 1, sent
    response, sent = statements(lambda: client.get(f"/v2/group/app/blobs/{digest}"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert len(sent) == 1, sent


def test_missing_repository_and_blob_keep_their_answers(client):
    """One query for the usual case; the precise error (NAME_UNKNOWN, BLOB_UNKNOWN) otherwise."""
    missing = "sha256:" + "0" * 64
    response = client.get(f"/v2/group/app/blobs/{missing}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    push_layer(client, b"x" * 10)
    response = client.get(f"/v2/group/app/blobs/{missing}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    response = client.patch(
        "/v2/group/app/blobs/uploads/7d1c4f63-6a3d-4b0e-9b8e-1f0c2d3e4a5b", data=b"x", content_type="x/y"
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
