"""Image tags through the management API (spec section 10): the v2 and v3 lists, show, copy, delete — over the
rows the registry writes (a pushed tag and a copied one are the same row; a delete through either API is seen
by the other at once), with section 6's permissions and section 1's error bodies."""

import base64
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from swr.choices import PermissionLevel
from swr.models import AuditRecord, Manifest, Repository, RepositoryPermission, Tag

from .helpers import assert_swr_error
from .test_registry_api import OCI_MANIFEST, PASSWORD, digest_of, oci_error, push_image

NAME = "group/web"
BASE = "/v2/manage/namespaces/group/repos/web/tags"
V3 = "/v3/manage/namespaces/group/repos/web/tags"
V2_FIELDS = {
    "id": int, "repo_id": int, "Tag": str, "image_id": str, "manifest": str, "digest": str, "schema": int,
    "path": str, "internal_path": str, "size": int, "is_trusted": bool, "created": str, "updated": str,
    "deleted": type(None), "domain_id": str, "scanned": bool, "tag_type": int,
}  # fmt: skip
V3_FIELDS = {k: v for k, v in V2_FIELDS.items() if k not in ("Tag", "deleted", "scanned")} | {"tag": str}


@pytest.fixture
def registry(owner, namespace):
    """A registry client of alice (manager of organization 'group'), with HTTP Basic on every request."""
    owner.set_password(PASSWORD)
    owner.save()
    return Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode())


@pytest.fixture
def pushed(registry):
    """Repository group/web with tags v1 and v2 (two images) and latest (= v2), pushed through the registry."""
    first, _ = push_image(registry, NAME, "v1", layers=(b"base", b"one"))
    second, manifest = push_image(registry, NAME, "v2", layers=(b"base", b"two"))
    response = registry.put(f"/v2/{NAME}/manifests/latest", data=manifest, content_type=OCI_MANIFEST)
    assert response.status_code == 201
    return {"v1": first, "v2": second, "latest": second}


def repository():
    return Repository.objects.get(namespace__name="group", name="web")


def assert_counters_true():
    web = repository()
    assert web.num_images == Tag.objects.filter(repository=web).count()


class TestListV2:
    def test_every_field_with_its_type(self, api, pushed, settings):
        settings.SWR_REGISTRY_HOST = "swr.example.com"
        response = api.get(BASE)
        assert response.status_code == 200, response.content
        rows = response.json()
        assert response["Content-Range"] == "0-3/3"
        assert {row["Tag"] for row in rows} == {"v1", "v2", "latest"}
        for row in rows:
            assert {k: type(v) for k, v in row.items()} == V2_FIELDS, row
            assert row["digest"] == pushed[row["Tag"]]
            assert row["path"] == f"swr.example.com/group/web:{row['Tag']}"
            assert (row["schema"], row["tag_type"], row["is_trusted"]) == (2, 0, False)
            assert row["repo_id"] == repository().pk
            assert row["domain_id"] == repository().namespace.tenant.domain_id
            manifest = json.loads(row["manifest"])
            assert digest_of(row["manifest"].encode()) == row["digest"]
            assert row["image_id"] == manifest["config"]["digest"]
            assert row["size"] == manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
            assert row["created"].endswith("Z")

    def test_offset_paging_and_order(self, api, pushed):
        page = api.get(f"{BASE}?order_column=tag&order_type=asc&limit=2&offset=1")
        assert [row["Tag"] for row in page.json()] == ["v1", "v2"]
        assert page["Content-Range"] == "1-2/3"
        newest_first = [row["Tag"] for row in api.get(BASE).json()]
        assert newest_first[-1] == "v1"

    def test_filter_form_and_contains(self, api, pushed):
        assert [r["Tag"] for r in api.get(f"{BASE}?filter=tag::v|order_column::tag|order_type::desc").json()] == [
            "v2",
            "v1",
        ]
        assert [r["Tag"] for r in api.get(f"{BASE}?tag=late").json()] == ["latest"]

    @pytest.mark.parametrize(
        "query",
        ["limit=0", "limit=1001", "offset=-1", "order_column=name", "order_type=up", "filter=tag", "limit=１"],
    )
    def test_bad_query_is_400(self, api, pushed, query):
        assert_swr_error(api.get(f"{BASE}?{query}"), 400, "SVCSTG.SWR.4000014")


class TestListV3:
    def test_fields_and_markers(self, api, pushed):
        seen, marker, pages = [], None, 0
        while True:
            response = api.get(
                f"{V3}?limit=2&order_column=tag&order_type=asc" + (f"&marker={marker}" if marker else "")
            )
            assert response.status_code == 200, response.content
            body = response.json()
            pages += 1
            for row in body["tags"]:
                assert {k: type(v) for k, v in row.items()} == V3_FIELDS, row
                assert row["manifest"] == ""  # with_manifest defaults to false
            seen += [row["tag"] for row in body["tags"]]
            assert body["has_more"] is ("nextMarker" in body)
            marker = body.get("nextMarker")
            if marker is None:
                break
            assert isinstance(marker, str)
        assert (seen, pages) == (["latest", "v1", "v2"], 2)

    def test_default_order_newest_first_and_with_manifest(self, api, pushed):
        body = api.get(f"{V3}?with_manifest=true").json()
        assert [row["tag"] for row in body["tags"]][-1] == "v1"
        assert body == {"tags": body["tags"], "has_more": False}
        assert all(digest_of(row["manifest"].encode()) == row["digest"] for row in body["tags"])

    @pytest.mark.parametrize(
        "query",
        [
            "marker=garbage",
            "marker=%25%25",
            "marker=WzFd",  # [1]: another ordering's marker
            "marker=WyJ4IiwxXQ",  # ["x", 1]: not a time
            "limit=0",
            "limit=1001",
            "order_column=size",
            "with_manifest=yes",
        ],
    )
    def test_bad_query_is_400(self, api, pushed, query):
        assert_swr_error(api.get(f"{V3}?{query}"), 400, "SVCSTG.SWR.4000014")

    def test_a_marker_of_another_ordering_is_400(self, api, pushed):
        marker = api.get(f"{V3}?limit=1").json()["nextMarker"]
        assert_swr_error(api.get(f"{V3}?limit=1&order_column=tag&marker={marker}"), 400, "SVCSTG.SWR.4000014")

    @pytest.mark.parametrize(
        ("ordering", "values"),
        [
            ("", [None, None]),  # null compares with nothing
            ("", ["2026-12-06T23:58:45+00:00", None]),
            ("", ["2026-12-06T23:58:45+00:00", 2**63]),  # past a bigint
            ("", ["2026-12-06T23:58:45+00:00", -(2**63) - 1]),
            ("&order_column=tag", [None]),
            ("&order_column=tag", ["v1\x00"]),  # PostgreSQL refuses NUL in a text
            ("&order_column=tag&order_type=asc", [None]),
        ],
    )
    def test_a_forged_marker_is_400(self, api, pushed, ordering, values):
        """A marker is the base64url of a JSON list that the server wrote; one that decodes into a value no column
        can be compared with is refused like any other marker the server did not write (never a 500)."""
        marker = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
        response = api.get(f"{V3}?limit=1{ordering}&marker={marker}")
        assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
        assert "marker" in response.json()["error_msg"]

    def test_page_costs_the_same_queries_at_any_depth(self, api, pushed):
        web = repository()
        manifest = Manifest.objects.filter(repository=web).first()
        Tag.objects.bulk_create(Tag(repository=web, name=f"t{i:05d}", manifest=manifest) for i in range(300))
        counts, marker = [], None
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                body = api.get(f"{V3}?limit=50" + (f"&marker={marker}" if marker else "")).json()
            counts.append(len(queries))
            marker = body["nextMarker"]
        assert len(set(counts)) == 1, counts


class TestRoutes:
    def test_unknown_and_wrong_method_answer_the_swr_body(self, api, pushed):
        assert_swr_error(api.get("/v3/manage/nothing"), 404, "SVCSTG.SWR.4040083")
        assert_swr_error(api.post("/v3/manage/repos", {}, format="json"), 405, "SVCSTG.SWR.4050000")
        assert_swr_error(api.post(V3, {}, format="json"), 405, "SVCSTG.SWR.4050000")
        assert_swr_error(api.put(f"{BASE}/v1", {}, format="json"), 405, "SVCSTG.SWR.4050000")

    def test_missing_organization_and_repository(self, api, pushed):
        assert_swr_error(api.get(V3.replace("web", "nope")), 404, "SVCSTG.SWR.4040010")
        assert_swr_error(api.get(BASE.replace("group", "nope")), 404, "SVCSTG.SWR.4040058")
        assert_swr_error(api.delete(f"{BASE.replace('web', 'nope')}/v1"), 404, "SVCSTG.SWR.4040010")

    def test_v2_list_costs_the_same_queries_whatever_the_page_size(self, api, pushed):
        web = repository()
        manifest = Manifest.objects.filter(repository=web).first()
        Tag.objects.bulk_create(Tag(repository=web, name=f"t{i:03d}", manifest=manifest) for i in range(60))
        counts = []
        for limit in (1, 10, 60):
            with CaptureQueriesContext(connection) as queries:
                assert len(api.get(f"{BASE}?limit={limit}").json()) == limit
            counts.append(len(queries))
        assert len(set(counts)) == 1, counts


class TestShow:
    def test_show(self, api, pushed):
        response = api.get(f"{BASE}/latest")
        assert response.status_code == 200
        row = response.json()
        assert {k: type(v) for k, v in row.items()} == V3_FIELDS
        assert (row["tag"], row["digest"]) == ("latest", pushed["latest"])
        assert digest_of(row["manifest"].encode()) == row["digest"]

    def test_missing_and_invalid(self, api, pushed):
        assert_swr_error(api.get(f"{BASE}/nope"), 404, "SVCSTG.SWR.4040048")
        assert_swr_error(api.get(f"{BASE}/.hidden"), 400, "SVCSTG.SWR.4009021")
        assert_swr_error(api.get(f"{BASE}/{'x' * 129}"), 400, "SVCSTG.SWR.4009021")


class TestCopy:
    def test_copy_is_a_tag_the_registry_serves(self, api, registry, pushed):
        response = api.post(BASE, {"source_tag": "v1", "destination_tag": "stable"}, format="json")
        assert response.status_code == 201, response.content
        assert response.json() == {}
        pulled = registry.get(f"/v2/{NAME}/manifests/stable", HTTP_ACCEPT=OCI_MANIFEST)
        assert (pulled.status_code, pulled["Docker-Content-Digest"]) == (200, pushed["v1"])
        assert "stable" in registry.get(f"/v2/{NAME}/tags/list").json()["tags"]
        assert repository().num_images == 4
        assert_counters_true()
        record = AuditRecord.objects.get(action="tag.copy")
        assert (record.object, record.username) == ("group/web:v1 -> group/web:stable", "alice")

    def test_existing_destination_is_409_unless_override(self, api, registry, pushed):
        body = {"source_tag": "v1", "destination_tag": "latest"}
        assert_swr_error(api.post(BASE, body, format="json"), 409, "SVCSTG.SWR.4090082")
        assert api.post(BASE, {**body, "override": True}, format="json").status_code == 201
        assert api.get(f"{BASE}/latest").json()["digest"] == pushed["v1"]
        assert registry.head(f"/v2/{NAME}/manifests/latest")["Docker-Content-Digest"] == pushed["v1"]
        assert repository().num_images == 3
        assert_counters_true()

    def test_form_body(self, api, pushed):
        response = api.post(BASE, {"source_tag": "v1", "destination_tag": "f", "override": "TRUE"})
        assert response.status_code == 201, response.content

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"source_tag": "nope", "destination_tag": "x"}, 404, "SVCSTG.SWR.4040048"),
            ({"source_tag": "v1", "destination_tag": "-x"}, 400, "SVCSTG.SWR.4009021"),
            ({"source_tag": "v1", "destination_tag": "a" * 129}, 400, "SVCSTG.SWR.4009021"),
            ({"source_tag": "v1/x", "destination_tag": "y"}, 400, "SVCSTG.SWR.4009021"),
            ({"source_tag": "v1", "destination_tag": "ok\n"}, 400, "SVCSTG.SWR.4009021"),
            ({"source_tag": "v1"}, 400, "SVCSTG.SWR.4000014"),
            ({"source_tag": 1, "destination_tag": "y"}, 400, "SVCSTG.SWR.4000014"),
            ({"source_tag": "v1", "destination_tag": "y", "override": "yes"}, 400, "SVCSTG.SWR.4000014"),
            ({"source_tag": "v1", "destination_tag": "y", "override": 1}, 400, "SVCSTG.SWR.4000014"),
        ],
    )
    def test_refusals(self, api, pushed, body, status, code):
        assert_swr_error(api.post(BASE, body, format="json"), status, code)
        assert repository().num_images == 3
        assert AuditRecord.objects.filter(action="tag.create", outcome="failure").count() == 1

    def test_missing_repository(self, api, pushed):
        response = api.post(BASE.replace("web", "nope"), {"source_tag": "v1", "destination_tag": "x"}, format="json")
        assert_swr_error(response, 404, "SVCSTG.SWR.4040010")


class TestDelete:
    def test_delete_is_seen_by_the_registry(self, api, registry, pushed):
        response = api.delete(f"{BASE}/latest")
        assert response.status_code == 204
        oci_error(registry.get(f"/v2/{NAME}/manifests/latest"), 404, "MANIFEST_UNKNOWN")
        # The image stays: v2 still names it.
        assert registry.head(f"/v2/{NAME}/manifests/{pushed['latest']}").status_code == 200
        assert repository().num_images == 2
        assert_counters_true()
        assert AuditRecord.objects.filter(action="tag.delete", object="group/web:latest", outcome="success").exists()
        assert_swr_error(api.delete(f"{BASE}/latest"), 404, "SVCSTG.SWR.4040048")
        assert_swr_error(api.delete(f"{BASE}/-bad"), 400, "SVCSTG.SWR.4009021")

    def test_registry_delete_is_seen_by_the_api(self, api, registry, pushed):
        assert registry.delete(f"/v2/{NAME}/manifests/v1").status_code == 202
        assert_swr_error(api.get(f"{BASE}/v1"), 404, "SVCSTG.SWR.4040048")
        assert registry.delete(f"/v2/{NAME}/manifests/{pushed['v2']}").status_code == 202
        assert api.get(BASE).json() == []
        assert api.get(V3).json() == {"tags": [], "has_more": False}
        assert repository().num_images == 0


class TestPermissions:
    """list/show need read (1); copy what a push needs (edit on the organization, manage on the repository);
    delete manage (7). Another tenant's private repository is refused; its public one is readable only."""

    def _expect(self, client, read: int, copy: int, delete: int):
        assert client.get(BASE).status_code == read
        assert client.get(V3).status_code == read
        assert client.get(f"{BASE}/v1").status_code == read
        body = {"source_tag": "v1", "destination_tag": "copied", "override": True}
        assert client.post(BASE, body, format="json").status_code == copy
        assert client.delete(f"{BASE}/copied" if copy == 201 else f"{BASE}/v1").status_code == delete

    @pytest.mark.parametrize(
        ("level", "expected"),
        [
            (None, (403, 403, 403)),
            (PermissionLevel.READ, (200, 403, 403)),
            (PermissionLevel.EDIT, (200, 201, 403)),
            (PermissionLevel.MANAGE, (200, 201, 204)),
        ],
    )
    def test_namespace_levels(self, pushed, client_for, bob, grant, namespace, level, expected):
        if level is not None:
            grant(bob, namespace, level)
        self._expect(client_for(bob), *expected)
        assert_counters_true()

    @pytest.mark.parametrize(
        ("level", "expected"),
        [(PermissionLevel.READ, (200, 403, 403)), (PermissionLevel.EDIT, (200, 403, 403)),
         (PermissionLevel.MANAGE, (200, 201, 204))],
    )  # fmt: skip
    def test_repository_levels(self, pushed, client_for, bob, level, expected):
        RepositoryPermission.objects.create(user=bob, repository=repository(), level=level)
        self._expect(client_for(bob), *expected)

    def test_refusal_codes(self, pushed, client_for, bob, grant, namespace, make_user, other_tenant):
        grant(bob, namespace, PermissionLevel.READ)
        assert_swr_error(client_for(bob).delete(f"{BASE}/v1"), 403, "SVCSTG.SWR.4039002")
        stranger = client_for(make_user("zoe", other_tenant))
        for response in (
            stranger.get(BASE),
            stranger.get(V3),
            stranger.get(f"{BASE}/v1"),
            stranger.delete(f"{BASE}/v1"),
        ):
            assert_swr_error(response, 403, "SVCSTG.SWR.4039001")
        # A missing repository reads the same as an existing private one to another tenant.
        missing = stranger.get(BASE.replace("web", "nothing"))
        assert_swr_error(missing, 403, "SVCSTG.SWR.4039001")
        assert missing.json()["error_msg"] == stranger.get(BASE).json()["error_msg"]
        assert Tag.objects.filter(repository=repository(), name="v1").exists()

    def test_public_repository_is_readable_by_other_tenants_only(self, pushed, client_for, make_user, other_tenant):
        Repository.objects.filter(pk=repository().pk).update(is_public=True)
        stranger = client_for(make_user("zoe", other_tenant))
        self._expect(stranger, 200, 403, 403)

    def test_without_credentials(self, pushed, client_for):
        anonymous = client_for(None)
        assert_swr_error(anonymous.get(BASE), 401, "SVCSTG.SWR.4010000")
        assert_swr_error(anonymous.get(V3), 401, "SVCSTG.SWR.4010000")


DEEP_TAGS = 100_000


@pytest.fixture
def deep(api, pushed):
    """group/web with 100 000 more tags on one image (distinct update times, microseconds apart)."""
    web = repository()
    manifest = Manifest.objects.get(repository=web, digest=pushed["v1"])
    for start in range(0, DEEP_TAGS, 10_000):
        Tag.objects.bulk_create(
            Tag(repository=web, name=f"deep-{i:06d}", manifest=manifest) for i in range(start, start + 10_000)
        )
    Repository.objects.filter(pk=web.pk).update(num_images=Tag.objects.filter(repository=web).count())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE swr_tag")  # what autovacuum does after a bulk load: the planner sees the rows
    return web


def _page_sql(api, query: str) -> str:
    """The SQL of the tag page that ``GET <v3 list>?<query>`` ran (its parameters written in)."""
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"{V3}?{query}")
    assert response.status_code == 200, response.content
    pages = [q["sql"] for q in queries.captured_queries if 'FROM "swr_tag"' in q["sql"] and "LIMIT" in q["sql"]]
    assert len(pages) == 1, queries.captured_queries
    return pages[0]


def _plan(sql: str):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
            return plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


class TestDepth:
    """A v3 page costs the same at any depth (spec section 10): its query starts from the marker in an index
    and reads only the rows of the page — measured on 100 000 tags, first page against one 60 000 rows deep."""

    @pytest.mark.parametrize(
        ("ordering", "index", "sqlite_index", "sqlite_range"),
        [
            ("", "swr_tag_list_updated", "swr_tag_list_updated", "updated_at<?"),
            # SQLite names the index of a UNIQUE written in its CREATE TABLE itself.
            ("order_column=tag&order_type=asc", "swr_tag_unique_name", "sqlite_autoindex_swr_tag_1", "name>?"),
        ],
    )
    def test_a_deep_page_reads_no_more_than_the_first(self, api, deep, ordering, index, sqlite_index, sqlite_range):
        from django.http import QueryDict

        from swr.api.filters import TagFilterSet
        from swr.api.pagination import TagMarkerPagination

        ordered = TagFilterSet(QueryDict(ordering), Tag.objects.filter(repository=deep)).qs
        paginator = TagMarkerPagination()
        columns = paginator.get_ordering(ordered)
        row = ordered.order_by(*columns)[60_000]
        marker = paginator.encode_marker([getattr(row, c.lstrip("-").replace("tag", "name")) for c in columns])
        first_sql = _page_sql(api, f"{ordering}&limit=100")
        deep_sql = _page_sql(api, f"{ordering}&limit=100&marker={marker}")
        body = api.get(f"{V3}?{ordering}&limit=100&marker={marker}").json()
        assert len(body["tags"]) == 100
        assert body["has_more"] is True
        assert "OFFSET" not in deep_sql
        if connection.vendor != "postgresql":
            for sql in (first_sql, deep_sql):
                plan = _plan(sql)
                assert f"USING INDEX {sqlite_index} (repository_id=?" in plan, plan
                assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
            assert sqlite_range in _plan(deep_sql)  # the scan starts at the marker
            return
        first, deeper = _plan(first_sql), _plan(deep_sql)
        for plan in (first, deeper):
            kinds = {node["Node Type"] for node in _nodes(plan)}
            assert not kinds & {"Sort", "Incremental Sort"}, json.dumps(plan, indent=1)
            scans = [node for node in _nodes(plan) if node.get("Relation Name") == "swr_tag"]
            assert [node.get("Index Name") for node in scans] == [index], plan
            read = scans[0]["Actual Rows"] + scans[0].get("Rows Removed by Filter", 0)
            assert read <= 102, plan  # the page and the row that says more follow, nothing before them

        def blocks(plan):
            return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]

        assert blocks(deeper) <= blocks(first) + 10, (first, deeper)
