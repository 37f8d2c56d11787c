"""The registry's routes (spec section 9, OCI distribution-spec v1.1), through Django's test client.

Callers log in with HTTP Basic (a user's name and password), which the registry routes accept as well
as bearer tokens. Real clients (skopeo, oras) and the official conformance suite run against a real
server elsewhere (tests/test_registry_clients.py, make conformance).

Every test runs on both blob storages (tests/conftest.py blob_storage): the folder, and SeaweedFS with blob
GETs served through the registry (SWR_BLOB_REDIRECT off: the test client cannot follow a redirect to the
object store; tests/test_registry_s3.py tests the redirect).
"""

import base64
import hashlib
import io
import json
import os

import pytest
from django.test import Client

from swr import services
from swr.models import Blob, Manifest, Repository, RepositoryBlob, Tag

from .helpers import OPERATOR

pytestmark = [
    pytest.mark.parametrize("blob_storage", ["filesystem", "s3-no-redirect"], indirect=True, scope="module"),
    pytest.mark.usefixtures("blob_storage"),
]

PASSWORD = "correct horse battery staple"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@pytest.fixture
def registry(owner, namespace):
    """A client of alice (manager of organization 'group'), logging in with Basic on every request."""
    owner.set_password(PASSWORD)
    owner.save()
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {credentials}")


def oci_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert [error["code"] for error in body["errors"]] == [code], body
    assert body["errors"][0]["message"]
    return body


def push_blob(client, name: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = digest_of(data, algorithm)
    response = client.post(
        f"/v2/{name}/blobs/uploads/?digest={digest}", data=data, content_type="application/octet-stream"
    )
    assert response.status_code == 201, response.content
    assert response["Docker-Content-Digest"] == digest
    assert response["Location"] == f"/v2/{name}/blobs/{digest}"
    return digest


def image_manifest(config: bytes, layers: list[bytes], **extra) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(layer),
                    "size": len(layer)} for layer in layers],
        **extra,
    }  # fmt: skip
    return json.dumps(document).encode()


def push_image(client, name: str, tag: str, layers=(b"layer one", b"layer two"), **extra) -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in (config, *layers):
        push_blob(client, name, blob)
    manifest = image_manifest(config, list(layers), **extra)
    response = client.put(f"/v2/{name}/manifests/{tag}", data=manifest, content_type=OCI_MANIFEST)
    assert response.status_code == 201, response.content
    assert response["Docker-Content-Digest"] == digest_of(manifest)
    return digest_of(manifest), manifest


class TestVersionCheck:
    def test_without_credentials_answers_the_bearer_challenge(self, db, settings):
        response = Client().get("/v2/")
        oci_error(response, 401, "UNAUTHORIZED")
        # SWR_REGISTRY_HOST unset: the service is the host the request was sent to.
        assert response["WWW-Authenticate"] == 'Bearer realm="http://testserver/service/token",service="testserver"'
        settings.SWR_REGISTRY_HOST = "registry.example.com"
        challenge = Client().get("/v2/")["WWW-Authenticate"]
        assert challenge == 'Bearer realm="http://testserver/service/token",service="registry.example.com"'
        assert response["Docker-Distribution-API-Version"] == "registry/2.0"

    def test_with_credentials_answers_200(self, registry):
        response = registry.get("/v2/")
        assert response.status_code == 200
        assert response["Docker-Distribution-API-Version"] == "registry/2.0"

    def test_v2_without_slash_stays_the_version_document(self, db):
        assert Client().get("/v2").json()["versions"][0]["id"] == "v2"


class TestBlobs:
    def test_monolithic_upload_then_head_get_and_range(self, registry):
        data = os.urandom(5000)
        digest = push_blob(registry, "group/web", data)
        head = registry.head(f"/v2/group/web/blobs/{digest}")
        assert (head.status_code, head["Content-Length"], head["Docker-Content-Digest"]) == (200, "5000", digest)
        assert head.content == b""
        got = registry.get(f"/v2/group/web/blobs/{digest}")
        assert got.status_code == 200
        assert b"".join(got.streaming_content) == data
        part = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE="bytes=100-199")
        assert (part.status_code, part["Content-Range"]) == (206, "bytes 100-199/5000")
        assert b"".join(part.streaming_content) == data[100:200]
        outside = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE="bytes=6000-7000")
        oci_error(outside, 416, "RANGE_INVALID")
        assert outside["Content-Range"] == "bytes */5000"  # the blob's length (RFC 9110 section 15.5.17)

    @pytest.mark.parametrize(
        ("header", "status", "content_range", "body"),
        [
            ("bytes=2-4", 206, "bytes 2-4/10", b"234"),
            ("Bytes=2-4", 206, "bytes 2-4/10", b"234"),  # a range unit is case-insensitive (RFC 9110 14.1)
            ("bytes=7-", 206, "bytes 7-9/10", b"789"),
            ("bytes=-3", 206, "bytes 7-9/10", b"789"),
            ("bytes=9-100", 206, "bytes 9-9/10", b"9"),
            ("items=0-1", 200, None, b"0123456789"),  # another unit: ignored (RFC 9110 14.2, MUST)
            ("bytes=0-1,3-4", 200, None, b"0123456789"),  # several ranges: this registry serves the whole
            ("bytes=5-2", 416, "bytes */10", None),  # invalid (RFC 9110 14.1.1); the OCI conformance suite's 500-0
            ("bytes=abc", 416, "bytes */10", None),  # malformed
            ("bytes=-", 416, "bytes */10", None),
            ("bytes=10-", 416, "bytes */10", None),  # starts past the end: unsatisfiable
            ("bytes=-0", 416, "bytes */10", None),  # no bytes at all
        ],
    )
    def test_a_blob_range_follows_rfc_9110(self, registry, header, status, content_range, body):
        digest = push_blob(registry, "group/web", b"0123456789")
        answer = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE=header)
        assert answer.status_code == status
        assert answer.get("Content-Range") == content_range
        if body is None:
            oci_error(answer, 416, "RANGE_INVALID")
        else:
            assert b"".join(answer.streaming_content) == body
            assert answer["Content-Length"] == str(len(body))

    def test_a_range_of_an_empty_blob_answers_the_empty_blob(self, registry):
        """An empty blob has no byte to point at (RFC 9110 section 14.1.1): its Range is ignored."""
        digest = push_blob(registry, "group/web", b"")
        for header in ("bytes=-1", "bytes=0-", "bytes=5-"):
            answer = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE=header)
            assert (answer.status_code, answer["Content-Length"], answer.get("Content-Range")) == (200, "0", None)

    def test_the_push_creates_the_repository_private_and_counts_it(self, registry, owner, tenant):
        push_blob(registry, "group/new/app", b"x")
        repository = Repository.objects.get(namespace__name="group", name="new/app")
        assert (repository.is_public, repository.creator, repository.category) == (False, owner, "other")
        tenant.refresh_from_db()
        assert tenant.repository_count == 1

    def test_a_push_beyond_the_repository_quota_is_denied(self, registry, tenant):
        """Spec section 9: a push that creates a repository counts against the tenant's repository quota. At the
        quota it is 403 DENIED in the OCI body, saying why (it was an unhandled SWR error: a 500), and it creates
        nothing."""
        tenant.repository_quota = 0
        tenant.save()
        response = registry.post(f"/v2/group/new/blobs/uploads/?digest={digest_of(b'x')}", data=b"x",
                                 content_type="application/octet-stream")  # fmt: skip
        body = oci_error(response, 403, "DENIED")
        assert "quota" in body["errors"][0]["message"]
        assert (Repository.objects.count(), Blob.objects.count()) == (0, 0)

    def test_a_push_into_a_missing_organization_creates_nothing(self, registry):
        response = registry.post("/v2/nowhere/app/blobs/uploads/")
        assert response.status_code in (403, 404)
        assert not Repository.objects.exists()

    def test_chunked_upload_in_order_and_out_of_order(self, registry):
        data = os.urandom(3000)
        start = registry.post("/v2/group/web/blobs/uploads/")
        assert start.status_code == 202
        location = start["Location"]
        first = registry.patch(location, data=data[:1000], content_type="application/octet-stream",
                               HTTP_CONTENT_RANGE="0-999")  # fmt: skip
        assert (first.status_code, first["Range"]) == (202, "0-999")
        skipped = registry.patch(location, data=data[2000:], content_type="application/octet-stream",
                                 HTTP_CONTENT_RANGE="2000-2999")  # fmt: skip
        oci_error(skipped, 416, "RANGE_INVALID")
        second = registry.patch(first["Location"], data=data[1000:2000], content_type="application/octet-stream",
                                HTTP_CONTENT_RANGE="1000-1999")  # fmt: skip
        assert second["Range"] == "0-1999"
        status = registry.get(location)
        assert (status.status_code, status["Range"]) == (204, "0-1999")
        digest = digest_of(data)
        done = registry.put(f"{location}?digest={digest}", data=data[2000:], content_type="application/octet-stream",
                            HTTP_CONTENT_RANGE="2000-2999")  # fmt: skip
        assert done.status_code == 201, done.content
        got = registry.get(f"/v2/group/web/blobs/{digest}")
        assert b"".join(got.streaming_content) == data

    def test_sha512_blob(self, registry):
        digest = push_blob(registry, "group/web", b"sha512 bytes", "sha512")
        assert registry.head(f"/v2/group/web/blobs/{digest}").status_code == 200

    def test_wrong_and_invalid_digests(self, registry):
        wrong = registry.post(f"/v2/group/web/blobs/uploads/?digest={digest_of(b'other')}", data=b"data",
                              content_type="application/octet-stream")  # fmt: skip
        oci_error(wrong, 400, "DIGEST_INVALID")
        invalid = registry.post("/v2/group/web/blobs/uploads/?digest=sha256:XYZ", data=b"data",
                                content_type="application/octet-stream")  # fmt: skip
        oci_error(invalid, 400, "DIGEST_INVALID")
        assert not Blob.objects.exists()

    def test_cancel_and_unknown_upload(self, registry):
        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        assert registry.delete(location).status_code == 204
        oci_error(registry.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
        oci_error(registry.get("/v2/group/web/blobs/uploads/not-a-uuid"), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_mount_from_another_repository(self, registry):
        digest = push_blob(registry, "group/web", b"shared layer")
        mounted = registry.post(f"/v2/group/api/blobs/uploads/?mount={digest}&from=group/web")
        assert (mounted.status_code, mounted["Docker-Content-Digest"]) == (201, digest)
        assert registry.head(f"/v2/group/api/blobs/{digest}").status_code == 200
        assert Blob.objects.count() == 1
        missing = registry.post(f"/v2/group/api/blobs/uploads/?mount={digest_of(b'none')}&from=group/web")
        assert missing.status_code == 202  # an ordinary upload instead

    def test_delete_unlinks_the_blob_from_the_repository_only(self, registry):
        digest = push_blob(registry, "group/web", b"bytes")
        push_blob(registry, "group/api", b"bytes")
        assert registry.delete(f"/v2/group/web/blobs/{digest}").status_code == 202
        assert registry.head(f"/v2/group/web/blobs/{digest}").status_code == 404  # a HEAD answer has no body
        oci_error(registry.get(f"/v2/group/web/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        assert registry.head(f"/v2/group/api/blobs/{digest}").status_code == 200
        assert Repository.objects.get(name="web").size == 0


class TestManifests:
    def test_push_pull_by_tag_and_digest_and_the_counters(self, registry):
        digest, manifest = push_image(registry, "group/web", "1.0")
        for reference in ("1.0", digest):
            got = registry.get(f"/v2/group/web/manifests/{reference}")
            assert (got.status_code, got.content, got["Content-Type"]) == (200, manifest, OCI_MANIFEST)
            assert got["Docker-Content-Digest"] == digest
        head = registry.head("/v2/group/web/manifests/1.0")
        assert (head.status_code, head["Content-Length"]) == (200, str(len(manifest)))
        repository = Repository.objects.get(name="web")
        blobs = RepositoryBlob.objects.filter(repository=repository).select_related("blob")
        assert repository.num_images == 1
        assert repository.size == sum(link.blob.size for link in blobs)
        assert repository.num_download == 2

    def test_the_management_api_shows_what_was_pushed(self, registry, api):
        push_image(registry, "group/web", "1.0")
        push_image(registry, "group/web", "2.0", layers=(b"another",))
        shown = api.get("/v2/manage/namespaces/group/repos/web").json()
        repository = Repository.objects.get(name="web")
        assert shown["num_images"] == 2
        assert shown["size"] == repository.size > 0
        (listed,) = api.get("/v2/manage/repos?name=web").json()
        assert (listed["tags"], listed["num_images"], listed["size"]) == (["1.0", "2.0"], 2, repository.size)

    def test_a_manifest_needs_its_blobs_in_the_repository(self, registry):
        config = b"{}"
        push_blob(registry, "group/web", config)
        manifest = image_manifest(config, [b"never pushed"])
        response = registry.put("/v2/group/web/manifests/1.0", data=manifest, content_type=OCI_MANIFEST)
        oci_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
        assert not Manifest.objects.exists()

    def test_an_invalid_manifest_and_tag(self, registry):
        oci_error(registry.put("/v2/group/web/manifests/1.0", data=b"not json", content_type=OCI_MANIFEST),
                  400, "MANIFEST_INVALID")  # fmt: skip
        digest, manifest = push_image(registry, "group/web", "ok")
        bad_tag = registry.put("/v2/group/web/manifests/-bad", data=manifest, content_type=OCI_MANIFEST)
        oci_error(bad_tag, 400, "MANIFEST_INVALID")
        wrong = registry.put(f"/v2/group/web/manifests/{digest_of(b'x')}", data=manifest, content_type=OCI_MANIFEST)
        oci_error(wrong, 400, "DIGEST_INVALID")

    def test_push_by_digest_with_tag_parameters(self, registry):
        digest, manifest = push_image(registry, "group/web", "first")
        response = registry.put(f"/v2/group/web/manifests/{digest}?tag=1.2.3&tag=latest", data=manifest,
                                content_type=OCI_MANIFEST)  # fmt: skip
        assert (response.status_code, response["OCI-Tag"]) == (201, "1.2.3, latest")
        assert registry.get("/v2/group/web/tags/list").json()["tags"] == ["1.2.3", "first", "latest"]
        sha512 = digest_of(manifest, "sha512")
        response = registry.put(f"/v2/group/web/manifests/{sha512}?tag=v512", data=manifest, content_type=OCI_MANIFEST)
        assert response["Docker-Content-Digest"] == sha512
        assert registry.get("/v2/group/web/manifests/v512")["Docker-Content-Digest"] == sha512

    def test_tags_list_with_n_and_last(self, registry):
        for tag in ("b", "a", "c", "D"):
            push_image(registry, "group/web", tag)
        assert registry.get("/v2/group/web/tags/list").json() == {"name": "group/web", "tags": ["D", "a", "b", "c"]}
        page = registry.get("/v2/group/web/tags/list?n=2")
        assert page.json()["tags"] == ["D", "a"]
        assert page["Link"] == '</v2/group/web/tags/list?n=2&last=a>; rel="next"'
        assert registry.get("/v2/group/web/tags/list?n=2&last=a").json()["tags"] == ["b", "c"]

    def test_delete_by_tag_then_by_digest(self, registry):
        digest, _ = push_image(registry, "group/web", "1.0")
        registry.put("/v2/group/web/manifests/latest", data=registry.get(f"/v2/group/web/manifests/{digest}").content,
                     content_type=OCI_MANIFEST)  # fmt: skip
        assert registry.delete("/v2/group/web/manifests/latest").status_code == 202
        assert registry.get("/v2/group/web/manifests/1.0").status_code == 200
        assert Repository.objects.get(name="web").num_images == 1
        assert registry.delete(f"/v2/group/web/manifests/{digest}").status_code == 202
        oci_error(registry.get("/v2/group/web/manifests/1.0"), 404, "MANIFEST_UNKNOWN")
        assert (Repository.objects.get(name="web").num_images, Tag.objects.count()) == (0, 0)

    def test_referrers_with_subject_and_artifact_type(self, registry):
        subject, manifest = push_image(registry, "group/web", "1.0")
        descriptor = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(manifest)}
        push_blob(registry, "group/web", b"{}")
        for kind in ("application/vnd.example.sbom", "application/vnd.example.signature"):
            document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
                        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(b"{}"),
                                   "size": 2},
                        "layers": [], "subject": descriptor, "annotations": {"kind": kind}}  # fmt: skip
            body = json.dumps(document).encode()
            pushed = registry.put(f"/v2/group/web/manifests/{digest_of(body)}", data=body, content_type=OCI_MANIFEST)
            assert (pushed.status_code, pushed["OCI-Subject"]) == (201, subject)
        listing = registry.get(f"/v2/group/web/referrers/{subject}")
        assert listing["Content-Type"] == OCI_INDEX
        assert sorted(m["artifactType"] for m in listing.json()["manifests"]) == [
            "application/vnd.example.sbom",
            "application/vnd.example.signature",
        ]
        filtered = registry.get(f"/v2/group/web/referrers/{subject}?artifactType=application/vnd.example.sbom")
        assert [m["annotations"] for m in filtered.json()["manifests"]] == [{"kind": "application/vnd.example.sbom"}]
        assert filtered["OCI-Filters-Applied"] == "artifactType"
        assert registry.get(f"/v2/group/web/referrers/{digest_of(b'nothing')}").json()["manifests"] == []

    def test_deleting_the_repository_deletes_its_manifests_tags_and_links(self, registry, api, tenant):
        push_image(registry, "group/web", "1.0")
        assert api.delete("/v2/manage/namespaces/group/repos/web").status_code == 204
        assert (Manifest.objects.count(), Tag.objects.count(), RepositoryBlob.objects.count()) == (0, 0, 0)
        oci_error(registry.get("/v2/group/web/manifests/1.0"), 404, "NAME_UNKNOWN")


class TestNamesAndCatalog:
    @pytest.mark.parametrize("name", ["Group/web", "group", "group/Web", "manage/web"])
    def test_invalid_names(self, registry, name):
        oci_error(registry.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")

    def test_catalog_lists_what_the_caller_may_pull(self, registry, make_tenant, make_user):
        push_blob(registry, "group/web", b"x")
        push_blob(registry, "group/api", b"y")
        other = make_tenant("globex")
        services.namespace_create(name="theirs", tenant=other, actor=OPERATOR)
        services.repository_create(namespace=services.Namespace.objects.get(name="theirs"), name="secret",
                                   is_public=False, actor=OPERATOR)  # fmt: skip
        assert registry.get("/v2/_catalog").json() == {"repositories": ["group/api", "group/web"]}
        page = registry.get("/v2/_catalog?n=1")
        assert page.json()["repositories"] == ["group/api"]
        assert registry.get("/v2/_catalog?n=1&last=group/api").json()["repositories"] == ["group/web"]


class TestUploadSessions:
    def test_an_abandoned_upload_expires(self, registry, settings):
        from datetime import timedelta

        from django.utils import timezone

        from swr.models import Upload

        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        registry.patch(location, data=b"part", content_type="application/octet-stream", HTTP_CONTENT_RANGE="0-3")
        Upload.objects.update(updated_at=timezone.now() - settings.SWR_UPLOAD_TTL - timedelta(seconds=1))
        oci_error(registry.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
        assert not Upload.objects.exists()
        # Other abandoned sessions are the garbage collector's (tests/test_gc.py): starting a session costs no sweep.
        stale = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        registry.patch(stale, data=b"part", content_type="application/octet-stream", HTTP_CONTENT_RANGE="0-3")
        Upload.objects.update(updated_at=timezone.now() - settings.SWR_UPLOAD_TTL - timedelta(seconds=1))
        registry.post("/v2/group/web/blobs/uploads/")
        assert Upload.objects.count() == 2
        from swr.audit import Actor
        from swr.distribution.gc import collect

        assert collect(actor=Actor.command()).uploads == 1
        assert Upload.objects.count() == 1
        oci_error(registry.get(stale), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_a_body_that_breaks_off_leaves_no_part_behind(self, registry):
        """A chunk whose body breaks off while it is stored (SIZE_INVALID from views._read_body) leaves the
        session as it was and no bytes in the store."""
        from swr.distribution import services as distribution_services
        from swr.distribution import storage
        from swr.distribution.errors import SizeInvalid
        from swr.models import Upload

        registry.post("/v2/group/web/blobs/uploads/")
        upload = Upload.objects.get()

        class BreaksOff:
            def __init__(self):
                self.pieces = [b"x" * 70_000, b"y" * 70_000]

            def read(self, size=-1):
                if self.pieces:
                    return self.pieces.pop(0)
                raise SizeInvalid("The request body could not be read whole: broken off.")

        with pytest.raises(SizeInvalid):
            distribution_services.upload_append(upload, BreaksOff(), None)
        try:
            left = storage.storage().listdir(f"uploads/{upload.id}")
        except FileNotFoundError:
            left = ([], [])
        assert left == ([], []), left
        assert (Upload.objects.get().parts, Upload.objects.get().size) == (0, 0)


class TestChunkAndFinishFoundByName:
    """A chunk read whole (a layer's PATCH) and a final PUT without a body find their session in the statement that
    changes it (services.upload_append_small, upload_finish_by_name); what that statement does not find answers
    as the session's lookup does (spec section 9), and leaves nothing behind."""

    @staticmethod
    def stale(settings):
        from datetime import timedelta

        from django.utils import timezone

        return timezone.now() - settings.SWR_UPLOAD_TTL - timedelta(seconds=1)

    @staticmethod
    def parts_on_disk(upload_id) -> list[str]:
        from swr.distribution import storage

        try:
            names = storage.storage().listdir(f"uploads/{upload_id}")[1]
        except FileNotFoundError:
            return []
        return [name for name in names if name.isdigit()]  # S3: a part is a link to the bytes stored under "next.*"

    def start(self, registry, name="group/web"):
        from swr.models import Upload

        location = registry.post(f"/v2/{name}/blobs/uploads/")["Location"]
        return location, Upload.objects.get(pk=location.rsplit("/", 1)[1])

    def test_a_session_started_by_name_is_the_row_create_makes(self, registry, tenant):
        """POST finds the repository by its names in its INSERT (services.upload_start_by_name)."""
        from django.utils import timezone

        from swr.models import Upload

        registry.post("/v2/group/web/blobs/uploads/")  # creates the repository: the ORM's path
        Upload.objects.all().delete()
        before = timezone.now()
        location, upload = self.start(registry)
        assert (upload.repository.name, upload.repository.namespace.name) == ("web", "group")
        assert (upload.size, upload.parts, upload.sha256, upload.digest) == (0, 0, "", "")
        assert before <= upload.created_at <= upload.updated_at <= timezone.now()
        assert location == f"/v2/group/web/blobs/uploads/{upload.id}"
        registry.post("/v2/group/api/blobs/uploads/")  # a repository the INSERT does not find: the ORM's path
        assert Repository.objects.filter(namespace__name="group", name="api").exists()

    def test_a_chunk_for_an_expired_session_is_unknown_and_removes_it(self, registry, settings):
        from swr.models import Upload

        location, upload = self.start(registry)
        Upload.objects.filter(pk=upload.pk).update(updated_at=self.stale(settings))
        oci_error(registry.patch(location, data=b"chunk", content_type="x/y"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert not Upload.objects.exists()
        assert self.parts_on_disk(upload.pk) == []

    def test_a_final_put_for_an_expired_session_is_unknown(self, registry, settings):
        from swr.models import Upload

        location, upload = self.start(registry)
        assert registry.patch(location, data=b"chunk", content_type="x/y").status_code == 202
        Upload.objects.filter(pk=upload.pk).update(updated_at=self.stale(settings))
        oci_error(registry.put(f"{location}?digest={digest_of(b'chunk')}"), 404, "BLOB_UPLOAD_UNKNOWN")
        assert not Upload.objects.exists()
        assert not Blob.objects.exists()

    def test_a_session_of_another_repository_is_unknown_to_chunks_and_puts(self, registry):
        from swr.models import Upload

        location, upload = self.start(registry, "group/web")
        registry.post("/v2/group/api/blobs/uploads/")  # the repository exists
        elsewhere = location.replace("/group/web/", "/group/api/")
        oci_error(registry.patch(elsewhere, data=b"chunk", content_type="x/y"), 404, "BLOB_UPLOAD_UNKNOWN")
        oci_error(registry.put(f"{elsewhere}?digest={digest_of(b'')}"), 404, "BLOB_UPLOAD_UNKNOWN")
        kept = Upload.objects.get(pk=upload.pk)
        assert (kept.parts, kept.size, kept.digest) == (0, 0, "")
        assert self.parts_on_disk(upload.pk) == []
        oci_error(registry.patch(location.replace("/group/web/", "/group/gone/"), data=b"x", content_type="x/y"),
                  404, "NAME_UNKNOWN")  # fmt: skip

    def test_a_chunk_that_does_not_start_where_the_session_ends_is_416(self, registry):
        from swr.models import Upload

        location, upload = self.start(registry)
        assert registry.patch(location, data=b"abc", content_type="x/y", HTTP_CONTENT_RANGE="0-2").status_code == 202
        oci_error(registry.patch(location, data=b"def", content_type="x/y", HTTP_CONTENT_RANGE="2-4"), 416,
                  "RANGE_INVALID")  # fmt: skip
        assert (Upload.objects.get().parts, Upload.objects.get().size) == (1, 3)
        assert self.parts_on_disk(upload.pk) == ["0"]
        response = registry.patch(location, data=b"def", content_type="x/y", HTTP_CONTENT_RANGE="3-5")
        assert (response.status_code, response["Range"]) == (202, "0-5")
        assert registry.put(f"{location}?digest={digest_of(b'abcdef')}").status_code == 201

    def test_chunks_without_content_range_follow_each_other(self, registry):
        location, upload = self.start(registry)
        for _n, chunk in enumerate([b"one", b"two", b"three"]):
            response = registry.patch(location, data=chunk, content_type="x/y")
            assert response.status_code == 202, response.content
        assert response["Range"] == f"0-{len(b'onetwothree') - 1}"
        assert sorted(self.parts_on_disk(upload.pk)) == ["0", "1", "2"]
        assert registry.put(f"{location}?digest={digest_of(b'onetwothree')}").status_code == 201
        assert registry.get(f"/v2/group/web/blobs/{digest_of(b'onetwothree')}").getvalue() == b"onetwothree"

    def test_a_put_that_finds_a_part_still_arriving_is_400_and_keeps_the_session(self, registry):
        """A part the session counts but the store does not hold yet (a PATCH renames its chunk into place after
        the UPDATE that counts it): BLOB_UPLOAD_INVALID, nothing stored, and the PUT succeeds once it is there."""
        from swr.distribution import storage
        from swr.models import Upload

        location, upload = self.start(registry)
        data = os.urandom(100)  # bytes the store does not hold
        assert registry.patch(location, data=data, content_type="x/y").status_code == 202
        part = storage.part_key(upload.pk, 0)
        storage.delete_parts([part])
        digest = digest_of(data)
        oci_error(registry.put(f"{location}?digest={digest}"), 400, "BLOB_UPLOAD_INVALID")
        assert Upload.objects.filter(pk=upload.pk).exists()
        assert not Blob.objects.exists()
        assert not storage.exists(digest)
        storage.save_part(part, io.BytesIO(data), None)
        assert registry.put(f"{location}?digest={digest}").status_code == 201
        assert registry.get(f"/v2/group/web/blobs/{digest}").getvalue() == data

    def test_a_put_whose_parts_go_meanwhile_leaves_no_partial_blob(self, registry, make_user):
        """A session of several parts whose last part goes while the PUT copies them (a concurrent PUT or DELETE
        of the same upload took it): 400, and nothing under the blob's key, which every later upload of the same
        bytes would take for the blob (a fresh attack found a truncated blob served to another tenant's push)."""
        from swr.distribution import storage
        from swr.models import Upload

        location, upload = self.start(registry)
        chunks = [os.urandom(70_000), os.urandom(70_000), os.urandom(70_000)]
        for chunk in chunks:
            assert registry.patch(location, data=chunk, content_type="x/y").status_code == 202
        data, digest = b"".join(chunks), digest_of(b"".join(chunks))
        storage.delete_parts([storage.part_key(upload.pk, 2)])  # the copy reads parts 0 and 1, then misses 2
        oci_error(registry.put(f"{location}?digest={digest}"), 400, "BLOB_UPLOAD_INVALID")
        assert not storage.exists(digest)
        folder = os.path.dirname(storage.blob_key(digest))
        assert [name for name in self.listing(folder) if name.startswith(digest.split(":")[1])] == []
        # The same bytes pushed whole afterwards are stored whole, and pulled whole.
        assert push_blob(registry, "group/web", data) == digest
        assert registry.get(f"/v2/group/web/blobs/{digest}").getvalue() == data
        assert Upload.objects.filter(pk=upload.pk).exists()  # the broken session is the client's to end

    def test_a_copy_whose_part_goes_midway_leaves_nothing_at_the_blobs_key(self, registry):
        """storage.commit_parts, when a part goes after the digest was checked and while the parts are copied
        (a concurrent PUT or DELETE of the same upload): FileNotFoundError, and neither the blob's key nor a
        partial copy beside it."""
        from swr.distribution import storage

        location, upload = self.start(registry)
        chunks = [os.urandom(70_000), os.urandom(70_000)]
        for chunk in chunks:
            assert registry.patch(location, data=chunk, content_type="x/y").status_code == 202
        digest = digest_of(b"".join(chunks))
        keys = [storage.part_key(upload.pk, n) for n in range(2)]
        storage.delete_parts(keys[1:])
        with pytest.raises(FileNotFoundError):
            storage.commit_parts(keys, digest)
        assert not storage.exists(digest)
        folder = os.path.dirname(storage.blob_key(digest))
        assert [name for name in self.listing(folder) if name.startswith(digest.split(":")[1])] == []

    @staticmethod
    def listing(folder: str) -> list[str]:
        from swr.distribution import storage

        try:
            return storage.storage().listdir(folder)[1]
        except FileNotFoundError:
            return []

    @pytest.mark.parametrize(
        "content_range", ["9223372036854775808-9223372036854775817", "9999999999999999990-9999999999999999999"]
    )
    def test_a_content_range_beyond_64_bits_is_416_and_leaves_nothing(self, registry, content_range):
        from swr.models import Upload

        location, upload = self.start(registry)
        response = registry.patch(location, data=b"0123456789", content_type="x/y", HTTP_CONTENT_RANGE=content_range)
        oci_error(response, 416, "RANGE_INVALID")
        assert (Upload.objects.get().parts, Upload.objects.get().size) == (0, 0)
        assert self.listing(f"uploads/{upload.pk}") == []

    def test_a_final_put_after_the_repository_was_deleted_is_name_unknown(self, registry, api):
        from swr.models import Upload

        location, _ = self.start(registry)
        assert registry.patch(location, data=b"orphan", content_type="x/y").status_code == 202
        assert api.delete("/v2/manage/namespaces/group/repos/web").status_code == 204
        oci_error(registry.put(f"{location}?digest={digest_of(b'orphan')}"), 404, "NAME_UNKNOWN")
        assert not Upload.objects.exists()
        assert not Blob.objects.exists()


class TestEveryFailureAnswersInTheOciBody:
    """A fault is a kind: whatever a registry route meets — an SWR error of a service it shares with the
    management API, a database away, a bug — the client reads the OCI error body (spec section 9)."""

    def test_an_swr_error_of_a_shared_service_keeps_its_status(self, registry, monkeypatch):
        from swr.distribution import services as distribution_services
        from swr.errors import NamespaceNotFound

        def gone(*args, **kwargs):
            raise NamespaceNotFound("Organization 'group' not found.")

        monkeypatch.setattr(distribution_services.services, "repository_create", gone)
        oci_error(registry.post("/v2/group/new/blobs/uploads/"), 404, "NAME_UNKNOWN")

    def test_a_bug_is_a_500_in_the_oci_body(self, registry, monkeypatch):
        from swr.distribution import selectors

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(selectors, "tags", broken)
        push_blob(registry, "group/web", b"x")
        body = oci_error(registry.get("/v2/group/web/tags/list"), 500, "UNKNOWN")
        assert "a bug" not in body["errors"][0]["message"]

    def test_a_database_away_is_a_503_in_the_oci_body(self, registry, monkeypatch):
        from django.db import OperationalError

        from swr.distribution import selectors

        def away(*args, **kwargs):
            raise OperationalError("connection refused")

        push_blob(registry, "group/web", b"x")
        monkeypatch.setattr(selectors, "tags", away)
        oci_error(registry.get("/v2/group/web/tags/list"), 503, "UNKNOWN")


class TestCraftedInput:
    """Inputs a tester crafted (each answered 500, or was accepted, before): 4xx in the OCI body, nothing stored."""

    @pytest.mark.parametrize("tag", ["nl\n", "bad\x00", "-x", "a" * 129])
    def test_tag_names_are_judged_whole(self, registry, tag):
        digest, manifest = push_image(registry, "group/web", "ok")
        from urllib.parse import quote

        by_tag = registry.put(f"/v2/group/web/manifests/{quote(tag)}", data=manifest, content_type=OCI_MANIFEST)
        oci_error(by_tag, 400, "MANIFEST_INVALID")
        by_param = registry.put(f"/v2/group/web/manifests/{digest}?tag={quote(tag)}", data=manifest,
                                content_type=OCI_MANIFEST)  # fmt: skip
        oci_error(by_param, 400, "MANIFEST_INVALID")
        assert list(Tag.objects.values_list("name", flat=True)) == ["ok"]

    def test_a_digest_with_a_final_newline_is_invalid(self, registry):
        digest = push_blob(registry, "group/web", b"x")
        oci_error(registry.get(f"/v2/group/web/blobs/{digest}%0A"), 400, "DIGEST_INVALID")

    def test_a_deeply_nested_manifest(self, registry):
        body = b"[" * 100000 + b"]" * 100000
        oci_error(registry.put("/v2/group/web/manifests/t", data=body, content_type=OCI_MANIFEST),
                  400, "MANIFEST_INVALID")  # fmt: skip

    @pytest.mark.parametrize("size", [10**30, -1, 5])
    def test_descriptor_sizes_must_be_the_blobs(self, registry, size):
        config = b'{"os": "linux"}'
        layer = b"layer bytes"
        push_blob(registry, "group/web", config)
        push_blob(registry, "group/web", layer)
        document = json.loads(image_manifest(config, [layer]))
        document["layers"][0]["size"] = size
        body = json.dumps(document).encode()
        oci_error(registry.put("/v2/group/web/manifests/t", data=body, content_type=OCI_MANIFEST),
                  400, "MANIFEST_INVALID")  # fmt: skip
        assert not Manifest.objects.exists()

    def test_many_missing_blobs_are_counted_not_all_listed(self, registry):
        push_blob(registry, "group/web", b"{}")
        manifest = image_manifest(b"{}", [f"layer {n}".encode() for n in range(50)])
        body = oci_error(registry.put("/v2/group/web/manifests/t", data=manifest, content_type=OCI_MANIFEST),
                         400, "MANIFEST_BLOB_UNKNOWN")  # fmt: skip
        assert body["errors"][0]["detail"]["missing"] == 50
        assert len(body["errors"][0]["detail"]["digests"]) == 10

    def test_numbers_of_thousands_of_digits(self, registry):
        digest = push_blob(registry, "group/web", b"0123456789")
        nines = "9" * 5000
        beyond = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE=f"bytes={nines}-")
        oci_error(beyond, 416, "RANGE_INVALID")
        assert beyond["Content-Range"] == "bytes */10"
        # A suffix or a last position past the end means up to the end (RFC 9110 section 14.1.2).
        for header in (f"bytes=-{nines}", f"bytes=0-{nines}"):
            answer = registry.get(f"/v2/group/web/blobs/{digest}", HTTP_RANGE=header)
            assert (answer.status_code, answer["Content-Range"]) == (206, "bytes 0-9/10")
            assert b"".join(answer.streaming_content) == b"0123456789"
        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        patch = registry.patch(location, data=b"x", content_type="application/octet-stream",
                               HTTP_CONTENT_RANGE=f"0-{nines}")  # fmt: skip
        oci_error(patch, 416, "RANGE_INVALID")
        assert not patch.has_header("Content-Range")  # a chunk's range, not a part of a blob

    @pytest.mark.parametrize("path", ["/v2/group/web/tags/list/", "/v2/group/web/blobs/sha256:a%2f..%2fx/y"])
    def test_unknown_registry_urls_answer_in_the_oci_body(self, registry, path):
        oci_error(registry.get(path), 404, "UNSUPPORTED")

    def test_a_chunk_that_lost_the_race_for_its_place_leaves_the_winner_whole(self, registry):
        """Two chunks for the same place of one session (two requests at once): the first to record itself
        wins; the other answers 416 and removes only its own bytes; the upload then ends with the winner's."""
        import io

        from swr.distribution import services as distribution_services
        from swr.models import Upload

        location = registry.post("/v2/group/web/blobs/uploads/")["Location"]
        upload = Upload.objects.get()
        stale = Upload.objects.get()  # the second request read the session before the first wrote
        repository = Repository.objects.get(name="web")
        distribution_services.upload_append(upload, io.BytesIO(b"winner"), 6, 0)
        with pytest.raises(distribution_services.RangeInvalid):
            distribution_services.upload_append(stale, io.BytesIO(b"loser!"), 6, 0)
        done = registry.put(f"{location}?digest={digest_of(b'winner')}")
        assert done.status_code == 201, done.content
        assert b"".join(registry.get(f"/v2/group/web/blobs/{digest_of(b'winner')}").streaming_content) == b"winner"
        assert repository.blob_links.count() == 1
