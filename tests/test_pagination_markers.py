"""Marker (keyset) paging of the v3 lists (swr/api/pagination.py; spec sections 10, 12, 13)."""

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from swr import services
from swr.api.pagination import MarkerPagination, RepositoryMarkerPagination
from swr.errors import SwrError
from swr.models import Repository

from .helpers import OPERATOR


def _request(**params):
    return Request(APIRequestFactory().get("/x", params))


@pytest.fixture
def repositories(namespace, owner):
    return [
        services.repository_create(
            namespace=namespace, name=f"r{i % 3}x{i}", is_public=False, creator=owner, actor=OPERATOR
        )
        for i in range(7)
    ]


def _walk(paginator_class, queryset, limit, marker_key="nextMarker"):
    seen, marker = [], None
    while True:
        params = {"limit": limit, **({"marker": marker} if marker is not None else {})}
        paginator = paginator_class()
        page = paginator.paginate_queryset(queryset, _request(**params))
        body = paginator.get_paginated_response([r.name for r in page]).data
        seen.append(body[paginator.results_key])
        marker = body.get(marker_key)
        if marker is None:
            return seen


def test_repository_markers_walk_every_row_once_by_id(repositories):
    pages = _walk(RepositoryMarkerPagination, Repository.objects.all(), 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == [r.name for r in sorted(repositories, key=lambda r: r.pk)]


@pytest.mark.parametrize("ordering", [("name",), ("-name",), ("-updated_at",), ("namespace__name", "name")])
def test_generic_markers_follow_the_querysets_ordering(repositories, ordering):
    queryset = Repository.objects.order_by(*ordering)
    pages = _walk(MarkerPagination, queryset, 2)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert sum(pages, []) == [r.name for r in queryset.order_by(*ordering, "-id" if ordering[0][0] == "-" else "id")]


@pytest.mark.parametrize("marker", ["abc", "0x1", "-1", "1" * 40, "１"])
def test_bad_repository_marker_is_400(repositories, marker):
    with pytest.raises(SwrError) as raised:
        RepositoryMarkerPagination().paginate_queryset(Repository.objects.all(), _request(marker=marker))
    assert raised.value.status_code == 400


@pytest.mark.parametrize("marker", ["%%%", "bm90IGpzb24", "WzFd", "WyJ4Iiwid2hvIl0", "x" * 2000])
def test_bad_string_marker_is_400(repositories, marker):
    with pytest.raises(SwrError) as raised:
        MarkerPagination().paginate_queryset(Repository.objects.order_by("-updated_at"), _request(marker=marker))
    assert raised.value.status_code == 400


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1"])
def test_limit_out_of_range_is_400(repositories, limit):
    with pytest.raises(SwrError):
        RepositoryMarkerPagination().paginate_queryset(Repository.objects.all(), _request(limit=limit))
