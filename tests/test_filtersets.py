"""The listing's FilterSets, queried directly, and the unpacking of SWR's filter= parameter."""

import pytest
from django.http import QueryDict
from rest_framework.test import APIRequestFactory

from swr import services
from swr.api.filters import NamespaceFilterSet, RepositoryFilterSet, parse_filter, query_params
from swr.errors import SwrError
from swr.models import Namespace, Repository

from .helpers import OPERATOR

pytestmark = pytest.mark.django_db


def unpacked(url):
    from rest_framework.request import Request

    return query_params(Request(APIRequestFactory().get(url)))


class TestFilterParameter:
    def test_entries_become_parameters(self):
        params = unpacked("/v2/manage/repos?filter=namespace::group|name::nginx$web|limit::5")
        assert params.dict() == {"namespace": "group", "name": "nginx$web", "limit": "5"}

    def test_a_parameter_given_on_its_own_wins(self):
        params = unpacked("/v2/manage/repos?namespace=mine&filter=namespace::theirs|category::linux")
        assert params.dict() == {"namespace": "mine", "category": "linux"}

    def test_empty_entries_are_skipped(self):
        assert parse_filter("|namespace::a||") == {"namespace": "a"}

    def test_value_may_be_empty_or_hold_colons(self):
        assert parse_filter("name::|namespace::a::b") == {"name": "", "namespace": "a::b"}

    @pytest.mark.parametrize("raw", ["namespace", "namespace:group", "::group", "a::b|oops"])
    def test_malformed_entry(self, raw):
        with pytest.raises(SwrError) as info:
            parse_filter(raw)
        assert info.value.status_code == 400
        assert "key::value" in info.value.message

    def test_cached_per_request(self):
        from rest_framework.request import Request

        request = Request(APIRequestFactory().get("/x?filter=name::a"))
        assert query_params(request) is query_params(request)


@pytest.fixture
def repos(tenant, owner):
    group = services.namespace_create(name="group", tenant=tenant, creator=owner, actor=OPERATOR)
    tools = services.namespace_create(name="tools", tenant=tenant, creator=owner, actor=OPERATOR)
    rows = [
        (group, "nginx/web", "app_server", True, 3),
        (group, "nginx", "app_server", False, 1),
        (group, "mysql", "database", True, 3),
        (tools, "arm-builder", "arm", False, 0),
        (tools, "web-ui", "lang", True, 7),
    ]
    return [
        Repository.objects.create(namespace=ns, name=name, category=cat, is_public=public, num_images=n)
        for ns, name, cat, public, n in rows
    ]


def names_of(params):
    filterset = RepositoryFilterSet(QueryDict(params), Repository.objects.all())
    assert filterset.is_valid(), filterset.errors
    return [r.name for r in filterset.qs]


class TestRepositoryFilterSet:
    def test_name_contains(self, repos):
        assert sorted(names_of("name=web")) == ["nginx/web", "web-ui"]

    def test_dollar_stands_for_slash(self, repos):
        assert names_of("name=nginx$we") == ["nginx/web"]

    def test_name_is_case_insensitive(self, repos):
        assert sorted(names_of("name=NGINX")) == ["nginx", "nginx/web"]

    def test_namespace_contains(self, repos):
        assert sorted(names_of("namespace=too")) == ["arm-builder", "web-ui"]

    def test_category(self, repos):
        assert sorted(names_of("category=app_server")) == ["nginx", "nginx/web"]

    def test_category_arms_means_arm(self, repos):
        assert names_of("category=arms") == ["arm-builder"]

    @pytest.mark.parametrize(("value", "expected"), [("true", 3), ("false", 2)])
    def test_is_public(self, repos, value, expected):
        assert len(names_of(f"is_public={value}")) == expected

    def test_filters_combine(self, repos):
        assert names_of("namespace=group&is_public=true&category=app_server&name=web") == ["nginx/web"]

    def test_order_by_name(self, repos):
        assert names_of("order_column=name") == sorted(r.name for r in repos)
        assert names_of("order_column=name&order_type=desc") == sorted((r.name for r in repos), reverse=True)

    def test_order_by_tag_count_breaks_ties_by_id(self, repos):
        expected = [r.name for r in sorted(repos, key=lambda r: (r.num_images, r.pk))]
        assert names_of("order_column=tag_count") == expected
        assert names_of("order_column=tag_count&order_type=desc") == expected[::-1]

    def test_order_by_namespace_then_name(self, repos):
        assert names_of("order_column=namespace") == ["mysql", "nginx", "nginx/web", "arm-builder", "web-ui"]

    def test_default_order_is_newest_first(self, repos):
        assert names_of("") == [r.name for r in reversed(repos)]

    @pytest.mark.parametrize(
        "params",
        ["category=games", "is_public=yes", "is_public=True", "order_column=size", "order_type=up"],
    )
    def test_invalid_values(self, params):
        filterset = RepositoryFilterSet(QueryDict(params), Repository.objects.all())
        assert not filterset.is_valid()
        key = params.split("=")[0]
        assert "is not one of" in filterset.errors[key][0]


class TestNamespaceFilterSet:
    def test_contains(self, tenant, owner):
        for name in ("group", "groupware", "tools"):
            services.namespace_create(name=name, tenant=tenant, creator=owner, actor=OPERATOR)
        filterset = NamespaceFilterSet(QueryDict("namespace=GROUP"), Namespace.objects.order_by("name"))
        assert [n.name for n in filterset.qs] == ["group", "groupware"]

    def test_mode(self):
        assert NamespaceFilterSet(QueryDict("mode=visible"), Namespace.objects.all()).is_valid()
        assert not NamespaceFilterSet(QueryDict("mode=all"), Namespace.objects.all()).is_valid()
