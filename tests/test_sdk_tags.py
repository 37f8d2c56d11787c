"""The official SDK (huaweicloudsdkswr) over the tag calls of spec section 10 and the v3 repository list of
section 13, against gunicorn, after a real push through the registry (tests/oci_client.py, the Bearer token flow).

Each answer is read into the SDK's own models and its fields are checked, not only that no exception was raised.
"""

import hashlib
import json

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkswr.v2 import model as m

from swr import services
from swr.models import Repository, Tag

from .helpers import OPERATOR
from .oci_client import RegistryClient
from .test_sdk import sdk, sdk_client  # noqa: F401 (the fixture: alice's SDK client with a fresh AK/SK)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def push(client: RegistryClient, name: str, tag: str, seed: int) -> tuple[str, str, int]:
    """Push a two-blob image as ``tag``: (manifest digest, config digest, image bytes)."""
    config = client.push_blob(name, 300, seed, streamed=False)
    layer = client.push_blob(name, 5000 + seed, seed + 1, streamed=True)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 300},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 5000 + seed}],
    }).encode()  # fmt: skip
    status, headers, answer = client.request(
        "PUT", f"/v2/{name}/manifests/{tag}", name=name, body=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert status == 201, answer
    return "sha256:" + hashlib.sha256(manifest).hexdigest(), config, 300 + 5000 + seed


@pytest.fixture
def pushed(server, owner, namespace, settings):
    _, token = services.token_issue(user=owner, actor=OPERATOR)
    client = RegistryClient(server, "alice", token)
    return {"v1": push(client, "group/web", "v1", 1), "v2": push(client, "group/web", "v2", 2)}


def test_tag_calls(sdk, server, pushed):  # noqa: F811 (sdk: the fixture)
    host = server.split("://")[1]
    web = Repository.objects.get(namespace__name="group", name="web")

    # v2 list: offset paging, Content-Range, the capital-T Tag read into the model's ``tag``.
    listed = sdk.list_repository_tags(
        m.ListRepositoryTagsRequest(
            namespace="group", repository="web", order_column="tag", order_type="asc", limit="10"
        )
    )
    assert listed.content_range == "0-2/2"
    assert [t.tag for t in listed.body] == ["v1", "v2"]
    for row in listed.body:
        digest, config, size = pushed[row.tag]
        assert (row.digest, row.image_id, row.size, row.repo_id) == (digest, config, size, web.pk)
        assert (row.schema, row.tag_type, row.is_trusted, row.scanned, row.deleted) == (2, 0, False, False, None)
        assert row.path == f"{host}/group/web:{row.tag}"
        assert row.domain_id == web.namespace.tenant.domain_id
        assert hashlib.sha256(row.manifest.encode()).hexdigest() == digest.split(":")[1]
        assert row.created.endswith("Z")
    filtered = sdk.list_repository_tags(
        m.ListRepositoryTagsRequest(namespace="group", repository="web", filter="tag::v2|limit::1")
    )
    assert ([t.tag for t in filtered.body], filtered.content_range) == (["v2"], "0-1/1")

    # copy: a new tag on v1's image, then 409 without override, then moved with it.
    sdk.create_repo_tag(
        m.CreateRepoTagRequest(
            namespace="group",
            repository="web",
            body=m.CreateRepoTagRequestBody(source_tag="v1", destination_tag="stable"),
        )
    )
    assert Tag.objects.get(repository=web, name="stable").manifest.digest == pushed["v1"][0]
    with pytest.raises(ClientRequestException) as conflict:
        sdk.create_repo_tag(
            m.CreateRepoTagRequest(
                namespace="group",
                repository="web",
                body=m.CreateRepoTagRequestBody(source_tag="v2", destination_tag="stable"),
            )
        )
    assert (conflict.value.status_code, conflict.value.error_code) == (409, "SVCSTG.SWR.4090082")
    sdk.create_repo_tag(
        m.CreateRepoTagRequest(
            namespace="group",
            repository="web",
            body=m.CreateRepoTagRequestBody(source_tag="v2", destination_tag="stable", override=True),
        )
    )

    # show (v3 shape)
    shown = sdk.show_repo_tag(m.ShowRepoTagRequest(namespace="group", repository="web", tag="stable"))
    assert (shown.tag, shown.digest, shown.image_id, shown.size) == ("stable", *pushed["v2"])
    assert (shown.schema, shown.tag_type, shown.path) == (2, 0, f"{host}/group/web:stable")
    assert json.loads(shown.manifest)["config"]["digest"] == pushed["v2"][1]

    # v3 list: one tag a page, following nextMarker to the end.
    seen, marker = [], None
    for _ in range(5):
        page = sdk.list_repository_tag(
            m.ListRepositoryTagRequest(
                namespace="group", repository="web", limit=1, marker=marker, order_column="tag", order_type="asc",
                with_manifest=True,
            )
        )  # fmt: skip
        assert len(page.tags) == 1
        row = page.tags[0]
        seen.append(row.tag)
        assert row.digest == pushed["v1" if row.tag == "v1" else "v2"][0]
        assert hashlib.sha256(row.manifest.encode()).hexdigest() == row.digest.split(":")[1]
        assert page.has_more is (page.next_marker is not None)
        marker = page.next_marker
        if marker is None:
            break
    assert seen == ["stable", "v1", "v2"]

    # delete, then the registry and the API both miss it.
    sdk.delete_repo_tag(m.DeleteRepoTagRequest(namespace="group", repository="web", tag="stable"))
    assert not Tag.objects.filter(repository=web, name="stable").exists()
    with pytest.raises(ClientRequestException) as missing:
        sdk.show_repo_tag(m.ShowRepoTagRequest(namespace="group", repository="web", tag="stable"))
    assert (missing.value.status_code, missing.value.error_code) == (404, "SVCSTG.SWR.4040048")
    web.refresh_from_db()
    assert web.num_images == 2


def test_v3_repository_list(sdk, server, pushed, owner, namespace):  # noqa: F811 (sdk: the fixture)
    for name in ("api", "db"):
        services.repository_create(
            namespace=namespace, name=name, is_public=name == "db", creator=owner, actor=OPERATOR
        )
    first = sdk.list_repo_details(m.ListRepoDetailsRequest(namespace="group", limit=2))
    assert [r.name for r in first.repos] == ["web", "api"]
    assert first.next_marker == first.repos[-1].id
    web = first.repos[0]
    assert (web.namespace_name, web.domain_name, web.num_images, web.is_public, web.status) == (
        "group", "acme", 2, False, True,
    )  # fmt: skip
    assert web.size == sum(size for _, _, size in pushed.values())
    assert (web.category, web.created_at[-1]) == ("other", "Z")
    rest = sdk.list_repo_details(m.ListRepoDetailsRequest(namespace="group", limit=2, marker=first.next_marker))
    assert ([r.name for r in rest.repos], rest.next_marker) == (["db"], None)
    public = sdk.list_repo_details(m.ListRepoDetailsRequest(is_public=True, name="d"))
    assert [r.name for r in public.repos] == ["db"]
