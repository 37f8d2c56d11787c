"""Online garbage collection (issue 14, must-have 4; spec section 9 "Storage and metadata"): swr/distribution/gc.py
and ``manage.py swr_gc``, on both blob storages (the folder and SeaweedFS) and both database engines.

Blobs are pushed through the registry's routes (Django's test client); the collector then runs in-process.
What it keeps: blobs a manifest refers to, blobs a repository holds within the grace period, blobs an open
upload is ending as. What it removes: the row and the bytes of everything else, the links no manifest uses
once older than the grace period, untagged manifests only when asked, expired uploads and abandoned parts.
"""

import base64
import io
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from swr import services
from swr.audit import Actor
from swr.distribution import gc, storage
from swr.models import AuditRecord, Blob, Manifest, Repository, RepositoryBlob, Tag, Upload

from .helpers import OPERATOR
from .test_registry_api import OCI_INDEX, PASSWORD, digest_of, push_blob, push_image

NOW = timedelta(0)


# Every test runs on the folder and on SeaweedFS (blobs read through the test client: no redirects).
pytestmark = [
    pytest.mark.parametrize("blob_storage", ["filesystem", "s3-no-redirect"], indirect=True, scope="module"),
    pytest.mark.usefixtures("blob_storage"),
]


@pytest.fixture
def registry(owner, namespace):
    """A client of alice (manager of organization 'group'), logging in with Basic on every request."""
    owner.set_password(PASSWORD)
    owner.save()
    return Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode())


def collect(**options):
    options.setdefault("grace", NOW)
    return gc.collect(actor=Actor.command(), **options)


def pull(client, name: str, reference: str) -> bytes:
    """The manifest, and every blob it refers to read whole (each must be there)."""
    response = client.get(f"/v2/{name}/manifests/{reference}")
    assert response.status_code == 200, response.content
    document = json.loads(response.content)
    for descriptor in [document["config"], *document["layers"]]:
        got = client.get(f"/v2/{name}/blobs/{descriptor['digest']}")
        assert got.status_code == 200, (descriptor, got.content[:200])
        assert digest_of(b"".join(got.streaming_content)) == descriptor["digest"]
    return response.content


def layer_digests(manifest: bytes) -> list[str]:
    document = json.loads(manifest)
    return [document["config"]["digest"], *[layer["digest"] for layer in document["layers"]]]


def age(minutes: int) -> None:
    """Make every blob row and link ``minutes`` old."""
    then = timezone.now() - timedelta(minutes=minutes)
    Blob.objects.update(created_at=then)
    RepositoryBlob.objects.update(created_at=then)
    Manifest.objects.update(created_at=then)


class TestCollects:
    def test_a_blob_no_manifest_uses_goes_row_link_and_bytes_and_the_report_counts_it(self, registry):
        orphan = push_blob(registry, "group/web", b"pushed but never used by a manifest")
        _, manifest = push_image(registry, "group/web", "1.0")
        assert storage.exists(orphan)
        before = Repository.objects.get(name="web").size

        report = collect()

        assert (report.blobs, report.bytes, report.links) == (1, len(b"pushed but never used by a manifest"), 1)
        assert report.digests == [orphan]
        assert not Blob.objects.filter(digest=orphan).exists()
        assert not storage.exists(orphan)
        assert registry.head(f"/v2/group/web/blobs/{orphan}").status_code == 404
        assert Repository.objects.get(name="web").size == before - len(b"pushed but never used by a manifest")
        pull(registry, "group/web", "1.0")  # what the image uses stays whole
        for digest in layer_digests(manifest):
            assert storage.exists(digest)

    def test_a_second_run_finds_nothing(self, registry):
        push_blob(registry, "group/web", b"orphan")
        assert collect().blobs == 1
        second = collect()
        assert (second.blobs, second.bytes, second.links) == (0, 0, 0)

    def test_the_grace_period_keeps_young_blobs(self, registry, settings):
        orphan = push_blob(registry, "group/web", b"young orphan")
        settings.SWR_GC_GRACE = timedelta(minutes=60)
        age(59)
        assert gc.collect(actor=Actor.command()).blobs == 0
        assert storage.exists(orphan)
        age(61)
        assert gc.collect(actor=Actor.command()).blobs == 1
        assert not storage.exists(orphan)

    def test_a_dry_run_counts_and_removes_nothing(self, registry):
        orphan = push_blob(registry, "group/web", b"counted, kept")
        report = collect(dry_run=True)
        assert (report.dry_run, report.blobs, report.bytes, report.links) == (True, 1, len(b"counted, kept"), 1)
        assert RepositoryBlob.objects.filter(blob__digest=orphan).exists()
        assert storage.exists(orphan)
        assert not AuditRecord.objects.filter(action="registry.gc").exists()

    def test_a_run_that_removed_something_is_audited(self, registry):
        push_blob(registry, "group/web", b"audited")
        collect()
        audit = AuditRecord.objects.get(action="registry.gc")
        assert (audit.source, audit.outcome, audit.object) == ("command", "success", "blobs")
        assert audit.detail.startswith(f"removed 1 blobs ({len(b'audited')} bytes)")
        collect()  # nothing removed: nothing to record
        assert AuditRecord.objects.filter(action="registry.gc").count() == 1


class TestKeeps:
    def test_blobs_manifests_refer_to(self, registry):
        _, manifest = push_image(registry, "group/web", "1.0")
        report = collect()
        assert (report.blobs, report.links) == (0, 0)
        pull(registry, "group/web", "1.0")

    def test_a_linked_blob_within_the_grace_period(self, registry):
        digest = push_blob(registry, "group/web", b"layer pushed, manifest not yet")
        assert collect(grace=timedelta(minutes=60)).blobs == 0
        assert registry.head(f"/v2/group/web/blobs/{digest}").status_code == 200

    def test_a_blob_an_open_upload_is_ending_as(self, registry):
        digest = push_blob(registry, "group/web", b"being uploaded again")
        assert registry.delete(f"/v2/group/web/blobs/{digest}").status_code == 202  # no link left
        upload = Upload.objects.create(repository=Repository.objects.get(name="web"), digest=digest)
        assert collect().blobs == 0
        assert storage.exists(digest)
        upload.delete()
        assert collect().blobs == 1
        assert not storage.exists(digest)

    def test_untagged_manifests_by_default(self, registry):
        digest, manifest = push_image(registry, "group/web", "1.0")
        assert registry.delete("/v2/group/web/manifests/1.0").status_code == 202
        report = collect()
        assert (report.manifests, report.blobs) == (0, 0)
        pull(registry, "group/web", digest)


class TestDeletesMakeBytesCollectable:
    def test_deleting_a_manifest(self, registry):
        digest, manifest = push_image(registry, "group/web", "1.0", layers=(b"only in web",))
        assert registry.delete(f"/v2/group/web/manifests/{digest}").status_code == 202
        report = collect()
        assert report.blobs == 2  # config and layer
        for blob in layer_digests(manifest):
            assert not storage.exists(blob)
            assert not Blob.objects.filter(digest=blob).exists()
        assert Repository.objects.get(name="web").size == 0

    def test_deleting_a_tag_with_delete_untagged(self, registry):
        digest, manifest = push_image(registry, "group/web", "1.0", layers=(b"tag deleted",))
        kept_digest, kept = push_image(registry, "group/web", "2.0", layers=(b"tag kept",))
        assert registry.delete("/v2/group/web/manifests/1.0").status_code == 202
        report = collect(delete_untagged=True)
        assert (report.manifests, report.blobs) == (1, 2)
        assert not Manifest.objects.filter(digest=digest).exists()
        assert registry.get(f"/v2/group/web/manifests/{digest}").status_code == 404
        assert not storage.exists(digest_of(b"tag deleted"))
        pull(registry, "group/web", "2.0")

    def test_delete_untagged_keeps_what_a_tagged_index_lists_and_young_manifests(self, registry):
        child, _ = push_image(registry, "group/web", "child", layers=(b"platform layer",))
        assert registry.delete("/v2/group/web/manifests/child").status_code == 202  # untagged now
        size = Manifest.objects.get(digest=child).size
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child,
                            "size": size}]}
        ).encode()  # fmt: skip
        assert registry.put("/v2/group/web/manifests/multi", data=index, content_type=OCI_INDEX).status_code == 201
        assert collect(delete_untagged=True).manifests == 0
        pull(registry, "group/web", child)
        Tag.objects.filter(name="multi").delete()
        assert collect(delete_untagged=True, grace=timedelta(minutes=60)).manifests == 0  # young
        assert collect(delete_untagged=True).manifests == 2

    def test_deleting_a_repository_never_removes_what_another_holds(self, registry):
        _, web = push_image(registry, "group/web", "1.0", layers=(b"shared layer", b"only in web"))
        _, api = push_image(registry, "group/api", "1.0", layers=(b"shared layer", b"only in api"))
        services.repository_delete(repository=Repository.objects.get(name="web"), actor=OPERATOR)
        report = collect()
        gone = {digest_of(b"only in web"), *[d for d in layer_digests(web) if d not in layer_digests(api)]}
        assert set(report.digests) == gone
        assert storage.exists(digest_of(b"shared layer"))
        pull(registry, "group/api", "1.0")

    def test_deleting_a_blob_link_in_one_repository_keeps_it_for_the_other(self, registry):
        shared = push_blob(registry, "group/web", b"in two repositories")
        push_blob(registry, "group/api", b"in two repositories")
        assert registry.delete(f"/v2/group/web/blobs/{shared}").status_code == 202
        assert collect(grace=timedelta(minutes=60)).blobs == 0
        assert storage.exists(shared)
        assert registry.get(f"/v2/group/api/blobs/{shared}").status_code == 200


class TestUploads:
    def test_expired_uploads_and_their_parts_go(self, registry, settings):
        started = registry.post("/v2/group/web/blobs/uploads/")
        location = started["Location"]
        assert registry.patch(location, data=b"half", content_type="application/octet-stream").status_code == 202
        upload = Upload.objects.get()
        part = storage.part_key(upload.id, 0)
        assert storage.storage().exists(part)
        assert collect().uploads == 0  # alive
        Upload.objects.update(updated_at=timezone.now() - settings.SWR_UPLOAD_TTL - timedelta(minutes=1))
        assert collect().uploads == 1
        assert not Upload.objects.exists()
        assert not storage.storage().exists(part)

    def test_parts_whose_upload_row_is_gone_go_after_the_grace_period(self, registry):
        stray = uuid.uuid4()
        storage.save_part(storage.part_key(stray, 0), io.BytesIO(b"left behind"), None)
        assert collect(grace=timedelta(minutes=60)).part_folders == 0
        assert collect().part_folders == 1
        assert not storage.storage().exists(storage.part_key(stray, 0))

    def test_parts_of_a_live_upload_stay(self, registry):
        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        assert registry.patch(location, data=b"first", content_type="application/octet-stream").status_code == 202
        assert collect().part_folders == 0
        done = registry.put(f"{location}?digest={digest_of(b'first')}")
        assert done.status_code == 201, done.content
        assert registry.get(f"/v2/group/web/blobs/{digest_of(b'first')}").status_code == 200

    def test_multipart_uploads_only_on_an_object_store_and_a_push_leaves_none(self, registry):
        """Step 4 looks for incomplete multipart uploads on an object store only (tests/test_registry_s3.py
        aborts them); a push that ended left none there, and on a folder there are none to look for."""
        push_blob(registry, "group/web", b"stored whole")
        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        assert registry.patch(location, data=b"a part", content_type="application/octet-stream").status_code == 202

        report = collect()

        assert report.multipart_uploads == 0
        assert report.summary().endswith(", 0 incomplete multipart uploads")
        assert (report.blobs, report.part_folders) == (1, 0)  # the other steps as before
        assert storage.stale_multipart_uploads(timezone.now()) == []
        assert storage.storage().exists(storage.part_key(Upload.objects.get().id, 0))  # the open upload's part


def store_stray(data: bytes, suffix: str = "") -> str:
    """Bytes under a blob's key (plus ``suffix``) that no row names, as a failed delete or a killed copy leaves
    them; the key."""
    key = storage.blob_key(digest_of(data)) + suffix
    storage._save_exact(key, ContentFile(data))
    return key


class TestStrayBytes:
    """Step 6 (``stray_bytes``, ``swr_gc --stray-bytes``): bytes under ``blobs/`` that no blob row and no open upload
    names, once older than both the grace period and SWR_UPLOAD_TTL."""

    def test_only_when_asked(self, registry, settings):
        orphan = store_stray(b"left alone unless asked")
        time.sleep(1.1)
        settings.SWR_UPLOAD_TTL = timedelta(seconds=1)

        assert (collect().stray_objects, collect(dry_run=True).stray_objects) == (0, 0)
        assert storage.storage().exists(orphan)
        out = io.StringIO()
        call_command("swr_gc", "--grace-minutes", "0", "--stray-bytes", stdout=out)
        assert not storage.storage().exists(orphan)
        assert ", 0 stray objects (0 bytes)," not in out.getvalue()

    def test_they_stay_while_younger_than_the_upload_ttl(self, registry):
        orphan = store_stray(b"a blob whose row went while the store was away")
        copy = store_stray(b"half a copy", suffix=f".{uuid.uuid4().hex}")

        report = collect(stray_bytes=True)  # grace 0, SWR_UPLOAD_TTL 24 hours: nothing stored today is stray yet

        assert (report.stray_objects, report.stray_bytes) == (0, 0)
        assert storage.storage().exists(orphan)
        assert storage.storage().exists(copy)

    def test_they_go_once_older_and_are_counted_reported_and_audited(self, registry, settings):
        orphan_data, copy_data = b"a blob whose row went while the store was away", b"half a copy"
        orphan = store_stray(orphan_data)
        copy = store_stray(copy_data, suffix=f".{uuid.uuid4().hex}")
        _, manifest = push_image(registry, "group/web", "1.0")
        time.sleep(1.1)  # a store may give modification times to the second only (SeaweedFS)
        settings.SWR_UPLOAD_TTL = timedelta(seconds=1)

        dry = collect(dry_run=True, stray_bytes=True)
        assert dry.stray_objects >= 2
        assert dry.stray_bytes >= len(orphan_data) + len(copy_data)
        assert storage.storage().exists(orphan)
        assert storage.storage().exists(copy)

        report = collect(stray_bytes=True)

        assert not storage.storage().exists(orphan)
        assert not storage.storage().exists(copy)
        # Earlier tests' blobs (their rows rolled back) may be stray too: at least these two were.
        assert report.stray_objects >= 2
        assert report.stray_bytes >= len(orphan_data) + len(copy_data)
        assert report.stray_objects == dry.stray_objects
        assert f"{report.stray_objects} stray objects ({report.stray_bytes} bytes)" in report.summary()
        assert AuditRecord.objects.get(action="registry.gc").detail == report.summary()
        pull(registry, "group/web", "1.0")  # what rows name stays
        assert collect(stray_bytes=True).stray_objects == 0

    def test_bytes_and_copies_of_a_blob_an_open_upload_is_ending_as_stay(self, registry, settings):
        data = b"stored by an upload that has not linked it yet"
        push_blob(registry, "group/web", b"makes the repository")
        key = store_stray(data)
        copy = storage.blob_key(digest_of(data)) + f".{uuid.uuid4().hex}"  # a copy becoming the same blob
        storage._save_exact(copy, ContentFile(data[:10]))
        time.sleep(1.1)
        settings.SWR_UPLOAD_TTL = timedelta(seconds=1)
        Upload.objects.create(repository=Repository.objects.get(name="web"), digest=digest_of(data))

        collect(stray_bytes=True)

        assert storage.storage().exists(key)
        assert storage.storage().exists(copy)
        Upload.objects.all().delete()
        collect(stray_bytes=True)
        assert not storage.storage().exists(key)
        assert not storage.storage().exists(copy)


class TestCommand:
    def test_swr_gc_reports_blobs_and_bytes(self, registry):
        push_blob(registry, "group/web", b"twelve bytes")
        out = io.StringIO()
        call_command("swr_gc", "--dry-run", "--grace-minutes", "0", stdout=out)
        assert out.getvalue().startswith("Would remove 1 blobs (12 bytes)")
        out = io.StringIO()
        call_command("swr_gc", "--grace-minutes", "0", stdout=out)
        assert out.getvalue().startswith("Removed 1 blobs (12 bytes)")
        assert out.getvalue().endswith(", 0 incomplete multipart uploads.\n")
        assert not Blob.objects.exists()

    def test_the_default_grace_period_comes_from_the_settings(self, registry, settings):
        push_blob(registry, "group/web", b"young")
        out = io.StringIO()
        call_command("swr_gc", stdout=out)
        assert out.getvalue().startswith("Removed 0 blobs")

    def test_a_negative_grace_period_is_refused(self, db):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="negative"):
            call_command("swr_gc", "--grace-minutes", "-1")


class TestSchedule:
    def test_migrate_keeps_one_schedule_every_interval(self, db, settings):
        from django_q.models import Schedule

        from swr.tasks import collect_garbage, ensure_gc_schedule

        schedule = Schedule.objects.get(name="swr-gc")
        assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
            "swr.tasks.collect_garbage", Schedule.MINUTES, settings.SWR_GC_INTERVAL_MINUTES
        )  # fmt: skip
        settings.SWR_GC_INTERVAL_MINUTES = 15
        ensure_gc_schedule()
        assert list(Schedule.objects.values_list("name", "minutes")) == [("swr-gc", 15)]
        settings.SWR_GC_INTERVAL_MINUTES = 0
        ensure_gc_schedule()
        assert not Schedule.objects.exists()
        assert collect_garbage().startswith("removed 0 blobs")


class TestLocks:
    def test_each_removal_locks_its_row_and_the_bytes_go_under_the_digests_lock(self, registry):
        """PostgreSQL: the link and the blob row are taken FOR UPDATE before they are checked again and removed,
        and the bytes are deleted under the digest's advisory lock (SQLite: every write holds the write lock)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        push_blob(registry, "group/web", b"locked before removed")
        with CaptureQueriesContext(connection) as queries:
            assert collect().blobs == 1
        sql = [query["sql"] for query in queries.captured_queries]
        if connection.vendor != "postgresql":
            assert not any("FOR UPDATE" in statement for statement in sql)
            return
        locking = [s for s in sql if s.rstrip().endswith("FOR UPDATE") or "pg_advisory_xact_lock" in s]
        assert any('FROM "swr_repositoryblob"' in s for s in locking), sql
        assert any('FROM "swr_blob"' in s for s in locking), sql
        assert any("pg_advisory_xact_lock" in s for s in locking), sql
