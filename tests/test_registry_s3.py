"""Blobs on an S3-compatible object store (issue 14, must-haves 1-3), on a real SeaweedFS (tests/seaweed.py).

gunicorn runs with SWR_BLOB_STORAGE=s3 and the default SWR_BLOB_REDIRECT (on): pushes go into the bucket
(multipart uploads, server-side copies: swr/distribution/s3.py), a blob GET answers 307 to a signed URL of
the store after the permission check, HEAD answers from the database. The tests look into the bucket with
their own boto3 client, and call the store's composition directly for the layouts of chunks it must handle.
"""

import hashlib
import socket
import time
import urllib.parse
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings

from swr.audit import Actor
from swr.distribution import errors as storage_errors
from swr.distribution import gc, storage
from swr.models import AuditRecord, Repository, Upload

from .helpers import start_gunicorn
from .liveserver import get
from .oci_client import RegistryClient, digest_of
from .seaweed import seaweedfs as start_seaweedfs

MIB = 1024 * 1024
PASSWORD = "s3-Blobs-Password-42"
REPOSITORY = "group/app"

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("blob_storage", ["s3"], indirect=True, scope="module"),
]


@pytest.fixture(scope="module")
def server(server_on_blob_storage):
    return server_on_blob_storage


@pytest.fixture
def pusher(settings, owner, namespace):
    """alice, who manages organization 'group', with a password the server checks (its production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner


@pytest.fixture
def client(server, pusher):
    return RegistryClient(server, pusher.username, PASSWORD)


def data_of(size: int, seed: int) -> bytes:
    return hashlib.shake_256(f"{seed}".encode()).digest(size)


def key_of(digest: str) -> str:
    algorithm, encoded = digest.split(":")
    return f"blobs/{algorithm}/{encoded[:2]}/{encoded}"


def push_chunks(client: RegistryClient, name: str, chunks: list[bytes]) -> str:
    """Push the blob of ``chunks`` as one PATCH each (with Content-Range), then PUT; its digest."""
    location = client.start_upload(name)
    start = 0
    for chunk in chunks:
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{start + len(chunk) - 1}"}
        status, answer_headers, body = client.request("PATCH", location, name=name, body=chunk, headers=headers)
        assert status == 202, (status, body[:300])
        location, start = answer_headers["Location"], start + len(chunk)
    digest = digest_of(chunks)
    separator = "&" if "?" in location else "?"
    target = f"{location}{separator}digest={urllib.parse.quote(digest)}"
    status, _, body = client.request("PUT", target, name=name, body=b"")
    assert status == 201, (status, body[:300])
    return digest


def stored(blob_storage, key: str) -> bytes:
    return blob_storage.store.client().get_object(Bucket=blob_storage.store.bucket, Key=key)["Body"].read()


def leftovers(blob_storage, prefix: str) -> tuple[list[str], list[str]]:
    """Keys under ``prefix`` and multipart uploads begun under it and neither completed nor aborted."""
    s3 = blob_storage.store.client()
    pending = s3.list_multipart_uploads(Bucket=blob_storage.store.bucket, Prefix=prefix).get("Uploads", [])
    return blob_storage.store.keys(prefix), [upload["Key"] for upload in pending]


def test_a_pull_is_redirected_to_a_signed_url_that_serves_the_blob(blob_storage, client, seaweedfs):
    data = data_of(3 * MIB, seed=1)
    digest = push_chunks(client, REPOSITORY, [data])

    status, headers, body = client.request("GET", f"/v2/{REPOSITORY}/blobs/{digest}", name=REPOSITORY)

    assert status == 307, body[:300]
    assert headers["Docker-Content-Digest"] == digest
    url = urllib.parse.urlsplit(headers["Location"])
    query = urllib.parse.parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}" == seaweedfs.endpoint
    assert url.path == f"/{seaweedfs.bucket}/{key_of(digest)}"
    assert query["X-Amz-Expires"] == ["300"]  # SWR_BLOB_REDIRECT_SECONDS: minutes, not hours
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Signature"]
    got = get(headers["Location"])
    assert got[0] == 200
    assert got[2] == data
    assert got[1]["Content-Type"] == "application/octet-stream"
    ranged = get(headers["Location"], {"Range": "bytes=10-19"})
    assert ranged[0] == 206
    assert ranged[2] == data[10:20]
    unsigned = urllib.parse.urlunsplit(url._replace(query=""))
    assert get(unsigned)[0] == 403  # the bucket is private: only the signature opens it
    tampered = headers["Location"].replace(key_of(digest), key_of(digest_of([b"another"])))
    assert get(tampered)[0] == 403


def test_a_signed_url_expires(blob_storage, client):
    digest = push_chunks(client, REPOSITORY, [data_of(1000, seed=2)])
    with override_settings(SWR_BLOB_REDIRECT_SECONDS=1):
        url = storage.signed_url(digest)
    assert get(url)[0] == 200
    time.sleep(2.5)
    status, _, body = get(url)
    assert status == 403, body[:300]
    assert b"expired" in body.lower()


def test_urls_are_signed_for_the_public_endpoint_when_one_is_set(blob_storage, client, seaweedfs):
    data = data_of(1000, seed=14)
    digest = push_chunks(client, REPOSITORY, [data])
    public = seaweedfs.endpoint.replace("127.0.0.1", "localhost")  # the same store under another name
    with override_settings(SWR_BLOB_REDIRECT_ENDPOINT_URL=public):
        url = storage.signed_url(digest)
    assert url.startswith(f"{public}/{seaweedfs.bucket}/{key_of(digest)}?")
    assert get(url)[2] == data  # signed for that host: the store accepts it there
    assert get(url.replace("localhost", "127.0.0.1"))[0] == 403  # and nowhere else


def test_permission_is_checked_before_the_redirect(blob_storage, client, server, make_user, tenant, settings):
    digest = push_chunks(client, REPOSITORY, [data_of(1000, seed=3)])  # a private repository
    bob = make_user("bob", tenant)  # of the same tenant, with no grant on organization 'group'
    bob.set_password(PASSWORD)
    bob.save()

    anonymous = get(f"{server}/v2/{REPOSITORY}/blobs/{digest}")
    stranger = RegistryClient(server, "bob", PASSWORD).request(
        "GET", f"/v2/{REPOSITORY}/blobs/{digest}", name=REPOSITORY
    )

    assert anonymous[0] == 401
    assert "Location" not in anonymous[1]
    assert stranger[0] in (401, 403, 404), stranger[2][:300]
    assert "Location" not in stranger[1]
    assert b"X-Amz" not in anonymous[2] + stranger[2]


def test_head_answers_from_the_database(blob_storage, client):
    data = data_of(2000, seed=4)
    digest = push_chunks(client, REPOSITORY, [data])
    # The bytes leave the bucket behind the registry's back: HEAD does not ask the store.
    blob_storage.store.client().delete_object(Bucket=blob_storage.store.bucket, Key=key_of(digest))

    status, headers, _ = client.request("HEAD", f"/v2/{REPOSITORY}/blobs/{digest}", name=REPOSITORY)

    assert status == 200
    assert headers["Content-Length"] == str(len(data))
    assert headers["Docker-Content-Digest"] == digest


def test_a_chunked_push_lands_in_the_bucket_as_one_multipart_object(blob_storage, client):
    # Chunks of every kind: large ones (copied inside the store), small ones between them (gathered into parts)
    chunks = [data_of(6 * MIB, 5), data_of(MIB, 6), data_of(100, 7), data_of(7 * MIB, 8), data_of(2 * MIB, 9)]
    before = set(blob_storage.store.keys("uploads/"))

    digest = push_chunks(client, REPOSITORY, chunks)

    key = key_of(digest)
    assert stored(blob_storage, key) == b"".join(chunks)
    head = blob_storage.store.client().head_object(Bucket=blob_storage.store.bucket, Key=key, PartNumber=1)
    assert head["PartsCount"] > 1  # composed by a multipart upload
    assert head["ContentType"] == "application/octet-stream"
    keys, pending = leftovers(blob_storage, "uploads/")
    assert set(keys) <= before
    assert not pending


def test_a_large_streamed_chunk_arrives_whole_in_the_bucket(blob_storage, client):
    # 21 MiB in one streamed PATCH: three multipart parts of 8 MiB (their limit on memory: test_upload_memory.py)
    size = 21 * MIB
    digest = client.push_blob(REPOSITORY, size, seed=10, streamed=True)
    assert client.blob_size(REPOSITORY, digest) == size
    s3 = blob_storage.store.client()
    assert s3.head_object(Bucket=blob_storage.store.bucket, Key=key_of(digest))["ContentLength"] == size
    body = s3.get_object(Bucket=blob_storage.store.bucket, Key=key_of(digest))["Body"]
    assert digest_of(iter(lambda: body.read(MIB), b"")) == digest


def test_a_cancelled_upload_leaves_no_parts(blob_storage, client):
    location = client.start_upload(REPOSITORY)
    upload_id = location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    for chunk in (data_of(9 * MIB, 11), data_of(MIB, 12)):
        status, headers, body = client.request("PATCH", location, name=REPOSITORY, body=chunk)
        assert status == 202, body[:300]
        location = headers["Location"]
    assert blob_storage.store.keys(f"uploads/{upload_id}/")  # the parts are in the bucket meanwhile

    status, _, body = client.request("DELETE", location, name=REPOSITORY)

    assert status == 204, body[:300]
    assert leftovers(blob_storage, f"uploads/{upload_id}/") == ([], [])


def test_an_interrupted_chunk_leaves_no_parts(blob_storage, client, server):
    location = client.start_upload(REPOSITORY)
    upload_id = location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    port = int(urllib.parse.urlsplit(server).port)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {client.authorization[REPOSITORY]}\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        piece = data_of(MIB, 13)
        for _ in range(12):  # more than one 8 MiB part: a multipart upload is under way when the client goes
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while leftovers(blob_storage, f"uploads/{upload_id}/") != ([], []) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(blob_storage, f"uploads/{upload_id}/") == ([], [])


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [100],
        [6 * MIB],
        [MIB, MIB],
        [5 * MIB, 1],
        [1, 5 * MIB],
        [2 * MIB, 6 * MIB],
        [6 * MIB, MIB, 6 * MIB],
        [3 * MIB, 3 * MIB, 3 * MIB],
        [MIB] * 7,
        [5 * MIB - 1, 5 * MIB + 1, 10],
    ],
    ids=lambda sizes: "+".join(f"{size / MIB:g}M" if size >= MIB else str(size) for size in sizes),
)
def test_the_store_composes_any_layout_of_parts(blob_storage, sizes):
    """S3BlobStorage.compose: the bytes of the parts in order, whatever their sizes (S3 wants 5 MiB parts but the
    last; a chunked upload's chunks have any size)."""
    store = storage.storage()
    s3, bucket = blob_storage.store.client(), blob_storage.store.bucket
    prefix = f"tests/compose/{uuid.uuid4()}"
    parts = [data_of(size, seed) for seed, size in enumerate(sizes)]
    keys = [f"{prefix}/{number}" for number in range(len(parts))]
    for key, part in zip(keys, parts, strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=part)

    store.compose(keys, f"{prefix}/whole")

    assert stored(blob_storage, f"{prefix}/whole") == b"".join(parts)
    store.delete_many([*keys, f"{prefix}/whole"])
    assert leftovers(blob_storage, f"{prefix}/") == ([], [])


def test_an_unreachable_store_answers_503_and_pulls_are_still_redirected(blob_storage, pusher, tmp_path):
    with (
        start_seaweedfs(tmp_path / "seaweedfs") as store,
        start_gunicorn(tmp_path / "log", env={**store.env(), "DJANGO_DB_POOL_SIZE": "2"}) as base,
    ):
        client = RegistryClient(base, pusher.username, PASSWORD)
        digest = push_chunks(client, REPOSITORY, [data_of(1000, seed=15)])
        store.process.kill()  # the store goes away at once, as in an outage
        store.process.wait()

        pushed = client.request(
            "POST", f"/v2/{REPOSITORY}/blobs/uploads/?digest={digest_of([b'later'])}", name=REPOSITORY, body=b"later"
        )
        head = client.request("HEAD", f"/v2/{REPOSITORY}/blobs/{digest}", name=REPOSITORY)
        pulled = client.request("GET", f"/v2/{REPOSITORY}/blobs/{digest}", name=REPOSITORY)

    assert pushed[0] == 503, pushed[2][:300]
    assert b"blob store" in pushed[2]
    assert head[0] == 200  # from the database
    assert pulled[0] == 307  # signing a URL asks nothing of the store


def begin_multipart(blob_storage, key: str) -> str:
    """A multipart upload of ``key`` with one part stored, begun with the tests' own client, left incomplete as a
    worker killed in the middle of S3BlobStorage.put_stream or compose leaves it; its upload id."""
    s3, bucket = blob_storage.store.client(), blob_storage.store.bucket
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data_of(MIB, seed=16))
    return upload_id


def pending_uploads(blob_storage, prefix: str) -> list[str]:
    """The ids of the multipart uploads under ``prefix`` the store still holds (neither completed nor aborted)."""
    s3 = blob_storage.store.client()
    return [
        upload["UploadId"]
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=blob_storage.store.bucket, Prefix=prefix)
        for upload in page.get("Uploads", ())
    ]


def collect(**options) -> gc.Report:
    return gc.collect(actor=Actor.command(), **options)


class TestCollectorAbortsMultipartUploads:
    """swr/distribution/gc.py step 4: a multipart upload begun before the grace period and never completed nor
    aborted holds parts the bucket's object listing does not show; the collector aborts it."""

    def test_an_incomplete_multipart_upload_is_aborted_and_counted(self, blob_storage):
        prefix = f"uploads/{uuid.uuid4()}/"  # an upload whose session is gone (no row)
        upload_id = begin_multipart(blob_storage, f"{prefix}0.{uuid.uuid4().hex}")
        assert pending_uploads(blob_storage, prefix) == [upload_id]
        assert blob_storage.store.keys(prefix) == []  # no listing of objects shows its part

        report = collect(grace=timedelta(0))

        assert pending_uploads(blob_storage, prefix) == []
        assert report.multipart_uploads == 1
        assert "1 incomplete multipart uploads" in report.summary()
        audit = AuditRecord.objects.get(action="registry.gc")  # it removed something: recorded
        assert audit.detail == report.summary()
        assert collect(grace=timedelta(0)).multipart_uploads == 0

    def test_one_begun_within_the_grace_period_is_kept(self, blob_storage):
        prefix = f"uploads/{uuid.uuid4()}/"
        upload_id = begin_multipart(blob_storage, f"{prefix}0.{uuid.uuid4().hex}")

        report = collect(grace=timedelta(minutes=60))

        assert report.multipart_uploads == 0
        assert pending_uploads(blob_storage, prefix) == [upload_id]
        assert not AuditRecord.objects.filter(action="registry.gc").exists()
        assert collect(grace=timedelta(0)).multipart_uploads == 1
        assert pending_uploads(blob_storage, prefix) == []

    def test_a_dry_run_counts_and_keeps_it(self, blob_storage):
        prefix = f"uploads/{uuid.uuid4()}/"
        upload_id = begin_multipart(blob_storage, f"{prefix}0.{uuid.uuid4().hex}")

        report = collect(grace=timedelta(0), dry_run=True)

        assert (report.dry_run, report.multipart_uploads) == (True, 1)
        assert report.summary().startswith("would remove")
        assert report.summary().endswith("1 incomplete multipart uploads")
        assert pending_uploads(blob_storage, prefix) == [upload_id]
        assert not AuditRecord.objects.filter(action="registry.gc").exists()
        assert collect(grace=timedelta(0)).multipart_uploads == 1

    def test_those_of_an_open_upload_are_kept_until_it_ends(self, blob_storage, namespace):
        """A part still streaming (uploads/<id>/), a blob being composed (blobs/, the upload marked with its
        digest): a push that takes longer than the grace period is not cut off."""
        repository = Repository.objects.create(namespace=namespace, name="app", is_public=False)
        streaming = Upload.objects.create(repository=repository)
        digest = f"sha256:{uuid.uuid4().hex * 2}"
        composing = Upload.objects.create(repository=repository, digest=digest)
        part = begin_multipart(blob_storage, f"uploads/{streaming.id}/0.{uuid.uuid4().hex}")
        blob = begin_multipart(blob_storage, key_of(digest))

        assert collect(grace=timedelta(0)).multipart_uploads == 0
        assert pending_uploads(blob_storage, f"uploads/{streaming.id}/") == [part]
        assert pending_uploads(blob_storage, key_of(digest)) == [blob]

        streaming.delete()
        composing.delete()
        assert collect(grace=timedelta(0)).multipart_uploads == 2
        assert pending_uploads(blob_storage, f"uploads/{streaming.id}/") == []
        assert pending_uploads(blob_storage, key_of(digest)) == []

    def test_one_outside_the_registrys_keys_is_not_its_to_abort(self, blob_storage):
        key = f"elsewhere/{uuid.uuid4()}"  # a bucket shared with something else
        upload_id = begin_multipart(blob_storage, key)

        assert collect(grace=timedelta(0)).multipart_uploads == 0

        assert pending_uploads(blob_storage, key) == [upload_id]
        blob_storage.store.client().abort_multipart_upload(
            Bucket=blob_storage.store.bucket, Key=key, UploadId=upload_id
        )


class AbortingReader:
    """A stream of ``size`` bytes that, once the first ``after`` bytes are read, lets ``act`` run (another actor
    ending the multipart upload under way, as the collector does once its session ended)."""

    def __init__(self, size: int, after: int, act):
        self.data, self.after, self.act, self.position = data_of(size, seed=20), after, act, 0

    def read(self, size: int = -1) -> bytes:
        if self.position >= self.after and self.act is not None:
            self.act, act = None, self.act
            act()
        size = len(self.data) - self.position if size is None or size < 0 else size
        piece = self.data[self.position : self.position + size]
        self.position += len(piece)
        return piece


def abort_all(blob_storage, prefix: str) -> None:
    s3, bucket = blob_storage.store.client(), blob_storage.store.bucket
    for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


class TestAMultipartUploadEndedByAnother:
    """The store's multipart upload of a part or a blob, aborted by another while it is sent (the collector, once
    the upload's session was cancelled or expired): the push is told BLOB_UPLOAD_UNKNOWN (404), not a 500 of the
    store's NoSuchUpload answer to the next part or to the failed upload's own abort, and nothing is left."""

    def test_a_streamed_part(self, blob_storage):
        key = f"uploads/{uuid.uuid4()}/0.{uuid.uuid4().hex}"
        reader = AbortingReader(20 * MIB, 9 * MIB, lambda: abort_all(blob_storage, key))

        with pytest.raises(storage_errors.BlobUploadUnknown) as raised:
            storage.storage().put_stream(key, reader)

        assert raised.value.status_code == 404
        assert "Start a new upload" in str(raised.value)
        assert leftovers(blob_storage, key) == ([], [])

    def test_a_composed_blob(self, blob_storage, monkeypatch):
        store = storage.storage()
        s3, bucket = blob_storage.store.client(), blob_storage.store.bucket
        prefix = f"tests/compose/{uuid.uuid4()}"
        keys = [f"{prefix}/{number}" for number in range(3)]
        for number, key in enumerate(keys):
            s3.put_object(Bucket=bucket, Key=key, Body=data_of(3 * MIB, number))
        read_into = type(store)._read_into

        def aborted_first(self, buffer, key, start, end):  # another ends the composition as it reads a part
            abort_all(blob_storage, f"{prefix}/whole")
            return read_into(self, buffer, key, start, end)

        monkeypatch.setattr(type(store), "_read_into", aborted_first)

        with pytest.raises(storage_errors.BlobUploadUnknown):
            store.compose(keys, f"{prefix}/whole")

        assert leftovers(blob_storage, f"{prefix}/whole") == ([], [])
        store.delete_many(keys)
