"""GET /v2/manage/repos against a data set of hundreds of repositories across tenants (spec section 5)."""

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from swr.choices import Category, PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, Tenant, User

from .helpers import assert_swr_error

pytestmark = pytest.mark.django_db

URL = "/v2/manage/repos"
ITEM_TYPES = {
    "name": str, "category": str, "description": str, "size": int, "is_public": bool, "num_images": int,
    "num_download": int, "created_at": str, "updated_at": str, "logo": str, "url": str, "path": str,
    "internal_path": str, "domain_name": str, "namespace": str, "tags": list, "status": bool, "total_range": int,
}  # fmt: skip


@pytest.fixture
def world(db):
    """3 tenants x 2 namespaces x 60 repositories, with repeated counts and times so that ties are real.

    In tenant acme: alice manages acme-a (grant 7), reads acme-b (grant 1); root is tenant administrator.
    """
    base = timezone.now() - timedelta(days=30)
    categories = itertools.cycle(Category.values)
    people = {}
    for tenant_name in ("acme", "globex", "initech"):
        tenant = Tenant.objects.create(name=tenant_name)
        for suffix in ("a", "b"):
            namespace = Namespace.objects.create(name=f"{tenant_name}-{suffix}", tenant=tenant)
            Repository.objects.bulk_create(
                Repository(
                    namespace=namespace,
                    name=f"{'svc/' if i % 3 == 0 else ''}app{i:02d}",
                    category=next(categories),
                    is_public=i % 4 == 0,
                    num_images=i % 5,
                )
                for i in range(60)
            )
    for i, repository in enumerate(Repository.objects.order_by("id")):
        Repository.objects.filter(pk=repository.pk).update(updated_at=base + timedelta(hours=i % 7))
    acme = Tenant.objects.get(name="acme")
    people["alice"] = User.objects.create_user(username="alice", tenant=acme)
    people["root"] = User.objects.create_user(username="root", tenant=acme, is_tenant_admin=True)
    people["zoe"] = User.objects.create_user(username="zoe", tenant=Tenant.objects.get(name="globex"))
    NamespacePermission.objects.create(
        user=people["alice"], namespace=Namespace.objects.get(name="acme-a"), level=PermissionLevel.MANAGE
    )
    NamespacePermission.objects.create(
        user=people["alice"], namespace=Namespace.objects.get(name="acme-b"), level=PermissionLevel.READ
    )
    return people


def readable_by(user):
    """The spec's rule, in Python: public repositories, and those of namespaces the user may read."""
    rows = Repository.objects.select_related("namespace")
    granted = set(NamespacePermission.objects.filter(user=user).values_list("namespace_id", flat=True))
    return [
        r
        for r in rows
        if r.is_public
        or (user.is_tenant_admin and r.namespace.tenant_id == user.tenant_id)
        or r.namespace_id in granted
    ]


def get(client, query=""):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 200, response.content
    return response


def all_pages(client, query, limit):
    names, offset = [], 0
    while True:
        response = get(client, f"{query}&limit={limit}&offset={offset}")
        page = response.json()
        total = page[0]["total_range"] if page else None
        assert (
            response["Content-Range"]
            == f"{offset}-{len(page)}/{total if page else response['Content-Range'].split('/')[1]}"
        )
        if not page:
            return names
        names += [(item["namespace"], item["name"]) for item in page]
        offset += limit


class TestVisibility:
    @pytest.mark.parametrize("who", ["alice", "root", "zoe"])
    def test_lists_exactly_what_the_caller_may_read(self, world, client_for, who):
        user = world[who]
        expected = {(r.namespace.name, r.name) for r in readable_by(user)}
        response = get(client_for(user), "limit=1000")
        got = [(item["namespace"], item["name"]) for item in response.json()]
        assert len(got) == len(set(got))
        assert set(got) == expected
        assert response["Content-Range"] == f"0-{len(expected)}/{len(expected)}"

    def test_user_without_grants_sees_public_repositories_only(self, world, client_for, make_user):
        loner = make_user("loner", Tenant.objects.get(name="initech"))
        items = get(client_for(loner), "limit=1000").json()
        assert items
        assert all(item["is_public"] for item in items)
        assert len(items) == Repository.objects.filter(is_public=True).count()

    def test_without_token(self, world):
        from rest_framework.test import APIClient

        assert_swr_error(APIClient().get(URL), 401, "SVCSTG.SWR.4010000")


class TestPaging:
    def test_default_limit_is_100(self, world, client_for):
        response = get(client_for(world["root"]))
        total = len(readable_by(world["root"]))
        assert total > 100
        assert len(response.json()) == 100
        assert response["Content-Range"] == f"0-100/{total}"

    @pytest.mark.parametrize("order", ["", "order_column=name", "order_column=tag_count&order_type=desc"])
    def test_pages_cover_every_row_once(self, world, client_for, order):
        client = client_for(world["alice"])
        expected = {(r.namespace.name, r.name) for r in readable_by(world["alice"])}
        names = all_pages(client, order, limit=37)
        assert len(names) == len(expected)
        assert set(names) == expected

    def test_offset_past_the_end(self, world, client_for):
        total = len(readable_by(world["alice"]))
        response = get(client_for(world["alice"]), f"offset={total + 5}")
        assert response.json() == []
        assert response["Content-Range"] == f"{total + 5}-0/{total}"

    def test_limit_1000_is_the_maximum(self, world, client_for):
        assert get(client_for(world["root"]), "limit=1000").status_code == 200
        body = assert_swr_error(client_for(world["root"]).get(f"{URL}?limit=1001"), 400, "SVCSTG.SWR.4000014")
        assert "limit" in body["error_msg"]

    @pytest.mark.parametrize(
        "query", ["limit=0", "limit=-1", "limit=ten", "limit=1.5", "offset=-1", "offset=x", "filter=limit::0"]
    )
    def test_invalid_paging(self, world, client_for, query):
        body = assert_swr_error(client_for(world["alice"]).get(f"{URL}?{query}"), 400, "SVCSTG.SWR.4000014")
        assert body["details"][0]["field"] in ("limit", "offset")

    def test_paging_inside_filter(self, world, client_for):
        response = get(client_for(world["alice"]), "filter=limit::5|offset::10|order_column::name")
        assert len(response.json()) == 5
        assert response["Content-Range"].startswith("10-5/")


def sort_key(column):
    return {
        "name": lambda r: (r.name, r.pk),
        "updated_time": lambda r: (r.updated_at, r.pk),
        "tag_count": lambda r: (r.num_images, r.pk),
        "namespace": lambda r: (r.namespace.name, r.name, r.pk),
        "is_public": lambda r: (r.is_public, r.pk),
    }[column]


class TestOrdering:
    @pytest.mark.parametrize("column", ["name", "updated_time", "tag_count", "namespace", "is_public"])
    @pytest.mark.parametrize("direction", ["asc", "desc"])
    def test_order(self, world, client_for, column, direction):
        user = world["root"]
        expected = sorted(readable_by(user), key=sort_key(column), reverse=direction == "desc")
        items = get(client_for(user), f"order_column={column}&order_type={direction}&limit=1000").json()
        assert [(i["namespace"], i["name"]) for i in items] == [(r.namespace.name, r.name) for r in expected]

    def test_default_is_updated_time_newest_first(self, world, client_for):
        user = world["alice"]
        expected = sorted(readable_by(user), key=sort_key("updated_time"), reverse=True)
        items = get(client_for(user), "limit=1000").json()
        assert [(i["namespace"], i["name"]) for i in items] == [(r.namespace.name, r.name) for r in expected]

    def test_filter_form_gives_the_same_answer(self, world, client_for):
        client = client_for(world["alice"])
        plain = get(client, "namespace=acme&name=svc$app&is_public=false&order_column=name&order_type=desc")
        packed = get(
            client, "filter=namespace::acme|name::svc$app|is_public::false|order_column::name|order_type::desc"
        )
        assert plain.json() == packed.json()
        assert plain.json()
        assert all(i["name"].startswith("svc/") and not i["is_public"] for i in plain.json())


class TestFiltersOverHttp:
    def test_filter_combination(self, world, client_for):
        user = world["root"]
        items = get(client_for(user), "namespace=acme-a&category=linux&is_public=false&limit=1000").json()
        expected = [
            r for r in readable_by(user)
            if r.namespace.name == "acme-a" and r.category == "linux" and not r.is_public
        ]  # fmt: skip
        assert {i["name"] for i in items} == {r.name for r in expected}
        assert items

    @pytest.mark.parametrize(
        "query",
        [
            "category=games",
            "is_public=maybe",
            "order_column=size",
            "order_type=sideways",
            "filter=category::games",
            "filter=oops",
        ],
    )
    def test_invalid_values_answer_400(self, world, client_for, query):
        assert_swr_error(client_for(world["alice"]).get(f"{URL}?{query}"), 400, "SVCSTG.SWR.4000014")

    def test_unknown_parameters_are_ignored(self, world, client_for):
        client = client_for(world["alice"])
        assert get(client, "color=red&limit=5").json() == get(client, "limit=5").json()


class TestAnswerShape:
    def test_every_field_with_its_type(self, world, client_for, settings):
        settings.SWR_REGISTRY_HOST = "registry.example.com"
        settings.SWR_REGISTRY_INTERNAL_HOST = "registry.internal:5000"
        item = get(client_for(world["alice"]), "name=svc$app03&namespace=acme-a").json()[0]
        assert {k: type(v) for k, v in item.items()} == ITEM_TYPES
        repository = Repository.objects.get(namespace__name="acme-a", name="svc/app03")
        assert item["path"] == "registry.example.com/acme-a/svc/app03"
        assert item["internal_path"] == "registry.internal:5000/acme-a/svc/app03"
        assert item["domain_name"] == "acme"
        assert item["namespace"] == "acme-a"
        assert item["num_images"] == repository.num_images
        assert (item["size"], item["num_download"], item["tags"]) == (0, 0, [])
        assert item["updated_at"].endswith("Z")
        assert item["created_at"].endswith("Z")
        assert item["total_range"] == 1


class TestCost:
    def test_constant_number_of_queries_whatever_the_page_size(self, world, client_for):
        client = client_for(world["alice"])
        counts = []
        for limit in (1, 10, 500):
            with CaptureQueriesContext(connection) as queries:
                get(client, f"limit={limit}")
            counts.append(len(queries))
        assert counts[0] == counts[1] == counts[2]
        assert counts[0] <= 6  # token, the caller's grants, count, the page's ids, its rows, their tags

    def test_page_ids_are_read_from_the_ordering_index(self, world):
        """What decides who may read a row is in the ordering index: finding a page's ids walks the index
        (on PostgreSQL without reading the table at all), so its cost does not grow with the rows of other
        tenants."""
        from swr import policy

        visible = policy.readable_repositories(world["alice"]).order_by("-updated_at", "-id")
        postgresql = connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            if postgresql:
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("SET enable_bitmapscan = off")
        plan = visible.values_list("pk", flat=True)[:100].explain()
        with connection.cursor() as cursor:
            if postgresql:
                cursor.execute("RESET enable_seqscan")
                cursor.execute("RESET enable_bitmapscan")
        expected = "Index Only Scan Backward using swr_repo_updated_id" if postgresql else "swr_repo_updated_id"
        assert expected in plan, plan

    @pytest.mark.parametrize("query", ["limit=7&offset=3", "order_column=name&limit=5&offset=11", "limit=500"])
    def test_a_page_is_the_slice_of_the_ordered_listing(self, world, client_for, query):
        """Ids first, rows second: the page holds the same rows, in the same order, as one sliced query."""
        from django.http import QueryDict

        from swr import policy
        from swr.api.filters import RepositoryFilterSet

        params = QueryDict(query)
        ordered = RepositoryFilterSet(params, policy.readable_repositories(world["alice"])).qs
        offset, limit = int(params.get("offset", 0)), int(params["limit"])
        rows = ordered.select_related("namespace")[offset : offset + limit]
        expected = [f"{r.namespace.name}/{r.name}" for r in rows]
        page = get(client_for(world["alice"]), query).json()
        assert [f"{item['namespace']}/{item['name']}" for item in page] == expected
        assert len(expected) > 1

    @pytest.mark.parametrize(
        ("order", "index"),
        [
            ("name", "swr_repo_name_id"),
            ("tag_count", "swr_repo_num_images_id"),
            ("updated_time", "swr_repo_updated_id"),
        ],
    )
    def test_ordering_can_be_read_from_an_index(self, world, order, index):
        """EXPLAIN of the page query shows the ordering index (sequential scans disabled on PostgreSQL so that
        the small test table does not hide it)."""
        from django.http import QueryDict

        from swr.api.filters import RepositoryFilterSet

        qs = RepositoryFilterSet(QueryDict(f"order_column={order}"), Repository.objects.all()).qs[:100]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("SET enable_sort = off")
        plan = qs.explain()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("RESET enable_seqscan")
                cursor.execute("RESET enable_sort")
        assert index in plan, plan

    @pytest.mark.parametrize("field", ["name", "namespace"])
    def test_contains_filters_use_trigram_indexes_on_postgresql(self, world, field):
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE '%trgm%'")
                assert cursor.fetchall() == []  # SQLite has no trigram index: it scans, by design
            return
        from django.http import QueryDict

        from swr.api.filters import RepositoryFilterSet

        qs = RepositoryFilterSet(QueryDict(f"{field}=app0"), Repository.objects.all()).qs
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
        plan = qs.explain()
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
        expected = "swr_repo_name_trgm" if field == "name" else "swr_namespace_name_trgm"
        assert expected in plan, plan
