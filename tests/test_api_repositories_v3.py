"""GET /v3/manage/repos (spec section 13): the v2 list's filters and visibility, paged by integer markers whose
cost does not grow with the depth of the page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from swr.models import Repository, Tenant

from . import test_api_listing
from .helpers import assert_swr_error
from .test_api_listing import readable_by

# The data set of the v2 list's tests: 3 tenants x 2 organizations x 60 repositories, and their users.
world = test_api_listing.world

pytestmark = pytest.mark.django_db

URL = "/v3/manage/repos"
FIELDS = {
    "id": int, "name": str, "category": str, "description": str, "size": int, "is_public": bool,
    "num_images": int, "num_download": int, "created_at": str, "updated_at": str, "domain_name": str,
    "namespace_name": str, "status": bool,
}  # fmt: skip


def get(client, query=""):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def walk(client, query="", limit=37):
    """Every page of the listing, following nextMarker; the rows in order, and the number of pages."""
    rows, marker, pages = [], None, 0
    while True:
        body = get(client, f"{query}&limit={limit}" + (f"&marker={marker}" if marker is not None else ""))
        pages += 1
        assert set(body) <= {"repos", "nextMarker"}
        rows += body["repos"]
        marker = body.get("nextMarker")
        if marker is None:
            assert len(body["repos"]) <= limit
            return rows, pages
        assert isinstance(marker, int)
        assert marker == body["repos"][-1]["id"]
        assert len(body["repos"]) == limit


class TestVisibility:
    @pytest.mark.parametrize("who", ["alice", "root", "zoe"])
    def test_the_same_repositories_as_the_v2_list(self, world, client_for, who):
        client = client_for(world[who])
        rows, _ = walk(client)
        expected = {(r.namespace.name, r.name) for r in readable_by(world[who])}
        got = [(row["namespace_name"], row["name"]) for row in rows]
        assert len(got) == len(set(got))
        assert set(got) == expected
        v2 = client.get("/v2/manage/repos?limit=1000").json()
        assert {(item["namespace"], item["name"]) for item in v2} == expected

    def test_another_tenant_sees_public_repositories_only(self, world, client_for, make_user):
        loner = make_user("loner", Tenant.objects.get(name="initech"))
        rows, _ = walk(client_for(loner), limit=1000)
        assert rows
        assert all(row["is_public"] for row in rows)
        assert len(rows) == Repository.objects.filter(is_public=True).count()

    def test_without_token(self, world, client_for):
        assert_swr_error(client_for(None).get(URL), 401, "SVCSTG.SWR.4010000")


class TestMarkers:
    def test_pages_follow_ids_and_the_last_has_no_marker(self, world, client_for):
        rows, pages = walk(client_for(world["root"]), limit=37)
        ids = [row["id"] for row in rows]
        assert ids == sorted(ids)
        assert pages == len(ids) // 37 + 1
        body = get(client_for(world["root"]), "limit=1000")
        assert "nextMarker" not in body
        assert [row["id"] for row in body["repos"]] == ids

    def test_default_limit_is_100(self, world, client_for):
        body = get(client_for(world["root"]))
        assert len(body["repos"]) == 100
        assert body["nextMarker"] == body["repos"][-1]["id"]

    def test_a_marker_past_the_end_is_an_empty_page(self, world, client_for):
        assert get(client_for(world["root"]), f"marker={Repository.objects.order_by('-id')[0].pk}") == {"repos": []}

    @pytest.mark.parametrize(
        "query",
        [
            "marker=abc", "marker=-1", "marker=1.5", "marker=１", f"marker={'9' * 40}", "limit=0", "limit=1001",
            "limit=x", "category=games", "is_public=maybe", "filter=oops", "filter=is_public::maybe",
        ],
    )  # fmt: skip
    def test_bad_input_is_400(self, world, client_for, query):
        assert_swr_error(client_for(world["alice"]).get(f"{URL}?{query}"), 400, "SVCSTG.SWR.4000014")

    def test_same_number_of_queries_at_any_depth(self, world, client_for):
        client = client_for(world["root"])
        counts, marker = [], None
        for _ in range(4):
            with CaptureQueriesContext(connection) as queries:
                body = get(client, "limit=20" + (f"&marker={marker}" if marker else ""))
            counts.append(len(queries))
            marker = body["nextMarker"]
        assert len(set(counts)) == 1, counts

    def test_the_page_after_a_marker_starts_at_the_primary_key(self, world):
        """The marker is a range on the primary key: the page reads from there, not the rows before it."""
        from django.http import QueryDict
        from rest_framework.request import Request
        from rest_framework.test import APIRequestFactory

        from swr import policy
        from swr.api.pagination import RepositoryMarkerPagination

        deep = Repository.objects.order_by("-id")[5].pk
        request = Request(APIRequestFactory().get(URL, QueryDict(f"marker={deep}&limit=5")))
        paginator = RepositoryMarkerPagination()
        queryset = policy.readable_repositories(world["root"])
        with CaptureQueriesContext(connection) as queries:
            page = paginator.paginate_queryset(queryset, request)
        captured = [q["sql"] for q in queries.captured_queries]
        assert [r.pk for r in page] == list(queryset.filter(pk__gt=deep).order_by("id").values_list("pk", flat=True))
        page_sql = captured[-1]
        assert f'"id" > {deep}' in page_sql
        assert "OFFSET" not in page_sql
        assert "LIMIT 6" in page_sql


class TestFilters:
    @pytest.mark.parametrize(
        "query",
        [
            "namespace=acme-a",
            "name=svc$app",
            "category=linux",
            "is_public=true",
            "filter=namespace::acme|is_public::false",
            "namespace=acme&name=app0&category=arms",
        ],
    )
    def test_the_same_answer_as_the_v2_list(self, world, client_for, query):
        client = client_for(world["root"])
        rows, _ = walk(client, query, limit=7)
        v2 = client.get(f"/v2/manage/repos?{query}&limit=1000").json()
        assert {(row["namespace_name"], row["name"]) for row in rows} == {(i["namespace"], i["name"]) for i in v2}
        assert rows

    def test_every_field_with_its_type(self, world, client_for):
        row = get(client_for(world["alice"]), "namespace=acme-a&name=svc$app03")["repos"][0]
        assert {k: type(v) for k, v in row.items()} == FIELDS
        repository = Repository.objects.get(namespace__name="acme-a", name="svc/app03")
        assert row["id"] == repository.pk
        assert (row["domain_name"], row["namespace_name"], row["status"]) == ("acme", "acme-a", True)
        assert (row["num_images"], row["category"]) == (repository.num_images, repository.category)
        assert row["updated_at"].endswith("Z")
