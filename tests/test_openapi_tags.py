"""The OpenAPI document (drf-spectacular) describes the tag routes and the v3 lists (spec sections 10 and 13):
their methods, parameters, answer shapes and error bodies, and the documented fields are the answer's."""

import pytest
from rest_framework.test import APIClient

from swr.api import urls

from . import test_api_tags
from .test_api_tags import BASE, V3

# Fixtures: group/web with the tags v1, v2 and latest, pushed through the registry.
registry, pushed = test_api_tags.registry, test_api_tags.pushed

pytestmark = pytest.mark.django_db

TAGS = "/v2/manage/namespaces/{namespace}/repos/{repository}/tags"
ROUTES = {
    TAGS: {"get", "post"},
    TAGS + "/{tag}": {"get", "delete"},
    "/v3/manage/namespaces/{namespace}/repos/{repository}/tags": {"get"},
    "/v3/manage/repos": {"get"},
    # spec section 12's v3 list (its fields: tests/test_api_shares.py)
    "/v3/manage/shared-repositories": {"get"},
}


@pytest.fixture
def document():
    response = APIClient().get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _schema(document, ref_or_schema: dict) -> dict:
    ref = ref_or_schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else ref_or_schema


def _answer_schema(document, path, method="get", status="200"):
    return _schema(
        document, document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    )


def test_every_v3_route_is_documented():
    """The URLconf's v3 routes are the ones this test knows (a new one must be added here and documented)."""
    v3 = {"/v3/manage/" + str(p.pattern).replace("<str:", "{").replace(">", "}") for p in urls.manage_v3_patterns}
    assert v3 == {path for path in ROUTES if path.startswith("/v3/")}


@pytest.mark.parametrize("path", list(ROUTES))
def test_routes_methods_and_error_bodies(document, path):
    assert set(document["paths"][path]) == ROUTES[path]
    for method, operation in document["paths"][path].items():
        assert operation["summary"]
        assert "401" in operation["responses"], (path, method)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        (TAGS, "get", {"namespace", "repository", "limit", "offset", "order_column", "order_type", "tag", "filter"}),
        (TAGS, "post", {"namespace", "repository"}),
        ("/v3/manage/namespaces/{namespace}/repos/{repository}/tags", "get",
         {"namespace", "repository", "limit", "marker", "order_column", "order_type", "tag", "with_manifest"}),
        ("/v3/manage/repos", "get", {"namespace", "name", "category", "is_public", "limit", "marker"}),
    ],
)  # fmt: skip
def test_parameters(document, path, method, expected):
    assert {p["name"] for p in document["paths"][path][method]["parameters"]} == expected


def test_copy_body_and_answers(document):
    operation = document["paths"][TAGS]["post"]
    body = _schema(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"source_tag", "destination_tag", "override"}
    assert set(body["required"]) == {"source_tag", "destination_tag"}
    assert {"201", "400", "403", "404", "409"} <= set(operation["responses"])
    assert "204" in document["paths"][TAGS + "/{tag}"]["delete"]["responses"]


def test_documented_fields_are_the_answers(document, api, pushed):
    v2_items = _schema(document, _answer_schema(document, TAGS)["items"])
    assert set(v2_items["properties"]) == set(api.get(BASE).json()[0])
    shown = _answer_schema(document, TAGS + "/{tag}")
    assert set(shown["properties"]) == set(api.get(f"{BASE}/v1").json())
    page = _answer_schema(document, "/v3/manage/namespaces/{namespace}/repos/{repository}/tags")
    answer = api.get(f"{V3}?limit=1").json()
    assert set(page["properties"]) == set(answer) == {"tags", "nextMarker", "has_more"}
    assert page["properties"]["nextMarker"]["type"] == "string"
    assert set(_schema(document, page["properties"]["tags"]["items"])["properties"]) == set(answer["tags"][0])
    repos = _answer_schema(document, "/v3/manage/repos")
    assert page["properties"]["has_more"]["type"] == "boolean"
    assert repos["properties"]["nextMarker"]["type"] == "integer"
    repos_answer = api.get("/v3/manage/repos").json()
    assert set(_schema(document, repos["properties"]["repos"]["items"])["properties"]) == set(repos_answer["repos"][0])
