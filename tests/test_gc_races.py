"""Garbage collection while pushes go on (issue 14, must-have 4; swr/distribution/gc.py's locking).

Over real HTTP: gunicorn (four workers) on each blob storage, pushers that push the same layer again and
again (and delete their image, so that the layer keeps becoming garbage), and the collector running in a
loop (a grace period of 1 s); every few rounds, with the three images deleted, a sweep without a grace
period takes the layer, so that the next rounds push it again from nothing while the loop goes on. No request
may fail with a 5xx, every image whose manifest was accepted is whole when pulled, and the layer was really
collected while pushes went on.

In-process: the worst moments forced, one at a time — a sweep between an upload's check of the store and
its link, a push between the sweep's row delete and its bytes delete, and a link removed between a
manifest push's check and its transaction. Each push survives or answers a clean 4xx that a retry fixes.

That the tests can fail: with the upload's mark removed from services.upload_finish (no Upload.digest
set under hold_digest) ``test_a_sweep_between_an_uploads_check_and_its_link`` loses the bytes (the blob
answers 404 after a 201), and without the second check in gc._delete_bytes
``test_a_push_between_the_sweeps_row_delete_and_its_bytes_delete`` does.
"""

import json
import random
import sys
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from swr.audit import Actor
from swr.distribution import gc, storage
from swr.distribution import services as distribution
from swr.models import Blob, Repository, Upload

from .helpers import OPERATOR
from .liveserver import get
from .oci_client import RegistryClient, digest_of, generated
from .test_gc import registry  # noqa: F401  (the in-process client fixture)
from .test_registry_api import OCI_MANIFEST, PASSWORD, image_manifest, oci_error, push_blob

pytestmark = pytest.mark.django_db(transaction=True)

LAYER_SIZE = 256 * 1024
LAYER_SEED = 14
ROUNDS = 15
MAX_ROUNDS = 10 * ROUNDS
PHASE = 5  # rounds of each pusher between two sweeps with the three pushers' images deleted
# Links younger than this stay (the time between a client's blob and its manifest); the layer's blob row is old.
GRACE = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def on_each_storage(blob_storage):
    """Every test runs on the folder and on SeaweedFS (where blob pulls answer 307 to a signed URL)."""
    return blob_storage


def served(registry, name: str, digest: str, data: bytes) -> None:  # noqa: F811
    """The registry serves blob ``digest`` of ``name`` (200, or 307 to the object store) and the store holds
    exactly ``data`` under it."""
    got = registry.get(f"/v2/{name}/blobs/{digest}")
    assert got.status_code in (200, 307), got.content[:300]
    with storage.open_blob(digest) as file:
        assert file.read() == data


def collect(grace=timedelta(0)):
    return gc.collect(actor=Actor.command(), grace=grace)


# --- over HTTP -------------------------------------------------------------------------------------------------


@pytest.fixture
def server(server_on_blob_storage):
    return server_on_blob_storage


@pytest.fixture
def pusher(settings, owner, namespace):
    """alice, manager of organization 'group', with a password the server checks (its production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner.username, PASSWORD


class Failed(Exception):
    pass


def _put_blob(client: RegistryClient, name: str, data: bytes) -> int:
    status, _, answer = client.request(
        "POST", f"/v2/{name}/blobs/uploads/?digest={digest_of([data])}", name=name, body=data,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    if status >= 500:
        raise Failed(f"blob upload answered {status}: {answer[:300]!r}")
    return status


def _push(client: RegistryClient, name: str, tag: str, layer: bytes) -> tuple[str, bytes] | None:
    """Push an image of ``layer`` and a config of its own; (digest, manifest), or None after a clean 4xx."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in (config, layer):
        status = _put_blob(client, name, blob)
        if status != 201:
            return None
    manifest = image_manifest(config, [layer])
    status, _, answer = client.request(
        "PUT", f"/v2/{name}/manifests/{tag}", name=name, body=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    if status >= 500:
        raise Failed(f"manifest push answered {status}: {answer[:300]!r}")
    if status != 201:
        assert json.loads(answer)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", answer
        return None
    return digest_of([manifest]), manifest


def _whole(client: RegistryClient, name: str, reference: str) -> None:
    status, _, manifest = client.request("GET", f"/v2/{name}/manifests/{reference}", name=name)
    if status != 200:
        raise Failed(f"manifest {reference} answered {status}")
    document = json.loads(manifest)
    for descriptor in [document["config"], *document["layers"]]:
        status, headers, data = client.request("GET", f"/v2/{name}/blobs/{descriptor['digest']}", name=name)
        if status == 307:  # a signed URL of the object store
            status, _, data = get(headers["Location"])
        if status != 200 or digest_of([data]) != descriptor["digest"]:
            raise Failed(f"blob {descriptor['digest']} of {name}:{reference} answered {status}, {len(data)} bytes")


def test_pushing_the_same_layer_while_gc_runs_loses_nothing(server, pusher, blob_storage, request):
    if connection.vendor == "sqlite" and blob_storage.kind == "s3":
        # Not the collector's: services.upload_append moves a chunk into place on the object store inside its
        # transaction; in a gevent worker that network call lets another request of the same worker begin a
        # transaction, whose wait for SQLite's write lock blocks the worker, so the holder never commits: the
        # pushes (and the collector) answer "database is locked" after 20 s. PostgreSQL does not block that way.
        request.applymarker(pytest.mark.xfail(reason="SQLite + S3 + gevent: upload_append's transaction", strict=False))
    layer = b"".join(generated(LAYER_SIZE, LAYER_SEED))
    layer_digest = digest_of([layer])
    stop = threading.Event()
    errors: list[str] = []
    collected = []
    accepted: dict[str, tuple[str, str]] = {}  # the images kept at the end: name -> (tag, digest)
    phases = {"ended": 0, "done": False}
    one_collector = threading.Lock()  # the looping collector and the sweep between phases take turns

    def collector():
        try:
            while not stop.is_set():
                with one_collector:
                    report = collect(GRACE)
                collected.extend(d for d in report.digests if d == layer_digest)
                stop.wait(0.02)
        except Exception as error:  # noqa: BLE001  (reported by the test)
            errors.append(f"collector: {error!r}")
        finally:
            connection.close()

    def between_phases():
        """Run by one pusher while all three wait, their images deleted: a sweep without a grace period takes
        the layer (its links and row, then its bytes), so that the next phase pushes it again from nothing
        while the looping collector goes on. Without this, whether the three pushers' gaps ever overlapped
        for the looping collector was left to timing, and some runs raced nothing."""
        try:
            with one_collector:
                report = collect()
            collected.extend(d for d in report.digests if d == layer_digest)
        finally:
            connection.close()
        phases["ended"] += 1
        rounds = phases["ended"] * PHASE
        phases["done"] = (rounds >= ROUNDS and bool(collected)) or rounds >= MAX_ROUNDS

    barrier = threading.Barrier(3, action=between_phases, timeout=120)

    def push_until_accepted(client: RegistryClient, name: str, tag: str) -> tuple[str, bytes]:
        for _ in range(3 * ROUNDS):
            pushed = _push(client, name, tag, layer)
            if pushed is not None:
                _whole(client, name, tag)
                return pushed
            # A link collected between the blob and the manifest: push again, as clients do.
        raise Failed("the pushes kept being refused")

    def push_again_and_again(number: int):
        client = RegistryClient(server, *pusher, timeout=60)
        name = f"group/race{number}"
        try:
            round_ = 0
            while True:
                pushed = push_until_accepted(client, name, f"r{round_}")
                # The layer becomes garbage again once nobody's manifest holds it; a pause of a few milliseconds,
                # different for each pusher, lets the three pushers' gaps overlap so the collector can take it.
                status, _, answer = client.request("DELETE", f"/v2/{name}/manifests/{pushed[0]}", name=name)
                if status != 202:
                    raise Failed(f"manifest delete answered {status}: {answer[:200]!r}")
                stop.wait(random.uniform(0, 0.05))
                round_ += 1
                if round_ % PHASE == 0:
                    barrier.wait()
                    # At least ROUNDS rounds, and more (up to MAX_ROUNDS) until the layer has been collected.
                    if phases["done"]:
                        tag = f"r{round_}"
                        accepted[name] = (tag, push_until_accepted(client, name, tag)[0])  # kept, pulled at the end
                        return
        except Exception as error:  # noqa: BLE001
            errors.append(f"pusher {number}: {error!r}")
            barrier.abort()  # the others stop waiting for this one

    threads = [threading.Thread(target=push_again_and_again, args=(n,)) for n in range(3)]
    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    stop.set()
    gc_thread.join(timeout=120)
    assert not errors, errors
    collect()  # and once more, with nothing in flight
    client = RegistryClient(server, *pusher, timeout=60)
    assert len(accepted) == 3, accepted
    for name, (tag, digest) in accepted.items():
        _whole(client, name, tag)
        _whole(client, name, digest)
    assert storage.exists(layer_digest)
    assert collected, "the layer was never collected while pushes went on: the test raced nothing"
    print(f"the layer was collected {len(collected)} times while three pushers pushed it again and again")


# --- the worst moments, in-process ---------------------------------------------------------------------------------


def _collectable(registry, data: bytes) -> str:  # noqa: F811
    """Push ``data`` as a blob and unlink it: a blob row and bytes that nothing keeps."""
    digest = push_blob(registry, "group/web", data)
    assert registry.delete(f"/v2/group/web/blobs/{digest}").status_code == 202
    return digest


def test_a_sweep_between_an_uploads_check_and_its_link(registry, monkeypatch):  # noqa: F811
    data = b"pushed again while collected"
    digest = _collectable(registry, data)
    commit_parts = storage.commit_parts
    reports = []

    def commit_then_sweep(keys, blob_digest):
        commit_parts(keys, blob_digest)  # the store holds the bytes: this upload stores none of its own
        reports.append(collect())  # the sweep, before the upload links the blob

    monkeypatch.setattr(storage, "commit_parts", commit_then_sweep)
    assert push_blob(registry, "group/web", data) == digest
    assert reports[0].blobs == 0  # the upload's mark kept the blob
    served(registry, "group/web", digest, data)
    assert not Upload.objects.exists()


def test_a_push_between_the_sweeps_row_delete_and_its_bytes_delete(registry, monkeypatch):  # noqa: F811
    data = b"row gone, bytes not yet"
    digest = _collectable(registry, data)
    delete_bytes = gc._delete_bytes
    pushed = []

    def push_then_delete_bytes(blob_digest):
        assert not Blob.objects.filter(digest=blob_digest).exists()  # the row's delete has committed
        pushed.append(push_blob(registry, "group/api", data))  # finds the bytes still there and uses them
        delete_bytes(blob_digest)

    monkeypatch.setattr(gc, "_delete_bytes", push_then_delete_bytes)
    report = collect()
    assert (report.blobs, pushed) == (1, [digest])
    served(registry, "group/api", digest, data)


def test_a_mount_of_a_blob_collected_meanwhile_asks_for_an_upload(registry, monkeypatch):  # noqa: F811
    data = b"mounted while collected"
    digest = push_blob(registry, "group/web", data)
    exists = storage.exists
    armed = [True]

    def exists_then_collect(blob_digest):
        found = exists(blob_digest)
        if armed and sys._getframe(1).f_code.co_name == "blob_mount":  # after its look-up, before its transaction
            armed.clear()
            distribution.blob_delete(Repository.objects.get(name="web"), blob_digest, OPERATOR)
            assert collect().blobs == 1
        return found

    monkeypatch.setattr(storage, "exists", exists_then_collect)
    response = registry.post(f"/v2/group/api/blobs/uploads/?mount={digest}&from=group/web")
    assert not armed
    assert response.status_code == 202, response.content  # not mounted: upload it (distribution-spec)
    assert push_blob(registry, "group/api", data) == digest
    served(registry, "group/api", digest, data)


def test_a_link_removed_between_a_manifest_pushs_check_and_its_transaction(registry, monkeypatch):  # noqa: F811
    config, layer = b'{"os": "linux"}', b"layer whose link goes"
    push_blob(registry, "group/web", config)
    push_blob(registry, "group/web", layer)
    manifest = image_manifest(config, [layer])
    atomic = transaction.atomic
    armed = [True]

    def collect_first(*args, **kwargs):
        if armed and sys._getframe(1).f_code.co_name == "manifest_put":  # its transaction, after its check
            armed.clear()
            assert collect().blobs == 2  # the links are older than no grace at all, and no manifest uses them
        return atomic(*args, **kwargs)

    monkeypatch.setattr(distribution.transaction, "atomic", collect_first)
    refused = registry.put("/v2/group/web/manifests/1.0", data=manifest, content_type=OCI_MANIFEST)
    monkeypatch.undo()
    oci_error(refused, 400, "MANIFEST_BLOB_UNKNOWN")
    for blob in (config, layer):  # the client pushes the blobs again, then the manifest
        push_blob(registry, "group/web", blob)
    assert registry.put("/v2/group/web/manifests/1.0", data=manifest, content_type=OCI_MANIFEST).status_code == 201
    assert registry.get("/v2/group/web/manifests/1.0").status_code == 200
