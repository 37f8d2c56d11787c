"""Versions, overview (spec section 7) and the OpenAPI document."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from swr import services
from swr.models import Repository

from .helpers import OPERATOR, assert_swr_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/v2"])
def test_versions_need_no_authentication(url):
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN="not-a-token")
    response = client.get(url)
    assert response.status_code == 200
    (version,) = response.json()["versions"]
    assert version["id"] == "v2"
    assert version["status"] == "CURRENT"
    assert version["links"][0]["href"] == "http://testserver/v2"


class TestOverview:
    def test_counts_of_the_callers_tenant_only(self, api, namespace, owner, tenant, other_tenant, make_user):
        services.repository_create(namespace=namespace, name="a", is_public=True, creator=owner, actor=OPERATOR)
        services.repository_create(namespace=namespace, name="b", is_public=False, creator=owner, actor=OPERATOR)
        Repository.objects.filter(name="a").update(num_images=3, size=1000)
        zoe = make_user("zoe", other_tenant)
        theirs = services.namespace_create(name="theirs", tenant=other_tenant, creator=zoe, actor=OPERATOR)
        services.repository_create(namespace=theirs, name="c", is_public=True, creator=zoe, actor=OPERATOR)
        response = api.get("/v2/manage/overview")
        assert response.status_code == 200
        assert response.json() == {
            "domain_id": tenant.domain_id,
            "domain_name": "acme",
            "namspace_num": 1,
            "repo_num": 2,
            "image_num": 3,
            "store_space": 1000,
            "downflow_size": 0,
        }

    def test_empty_tenant(self, api, tenant):
        body = api.get("/v2/manage/overview").json()
        assert (body["namspace_num"], body["repo_num"], body["image_num"], body["store_space"]) == (0, 0, 0, 0)

    def test_needs_authentication(self):
        assert_swr_error(APIClient().get("/v2/manage/overview"), 401, "SVCSTG.SWR.4010000")


def _api_routes():
    """(path, methods) of every management API route, from the URLconf itself."""
    from swr.api import urls

    routes = {}
    for pattern in urls.manage_patterns:
        path = "/v2/manage/" + str(pattern.pattern).replace("<str:", "{").replace(">", "}")
        actions = getattr(pattern.callback, "actions", None)
        if actions is None:  # a plain APIView
            view = pattern.callback.view_class
            actions = [m for m in ("get", "post", "patch", "put", "delete") if hasattr(view, m)]
        routes[path] = set(actions) - {"head", "options"}  # DRF answers these by itself
    return routes


class TestOpenApi:
    def test_document_validates(self):
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")

    def test_served_without_authentication(self):
        response = APIClient().get("/openapi.json")
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.")

    def test_every_route_is_documented_with_its_methods(self):
        document = APIClient().get("/openapi.json").json()
        for path, methods in _api_routes().items():
            assert path in document["paths"], path
            assert set(document["paths"][path]) == methods, path
        assert {"/", "/v2"} <= set(document["paths"])

    def test_errors_are_documented_with_the_error_body(self):
        document = APIClient().get("/openapi.json").json()
        error_schema = document["components"]["schemas"]["Error"]
        assert set(error_schema["properties"]) == {"error_code", "error_msg", "errorCode", "errorMessage", "details"}
        for path, operations in document["paths"].items():
            if not path.startswith("/v2/manage/"):
                continue
            for method, operation in operations.items():
                assert "401" in operation["responses"], (path, method)
                for status, response in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        ref = response["content"]["application/json"]["schema"]["$ref"]
                        assert ref == "#/components/schemas/Error", (path, method, status)

    def test_list_parameters_are_documented(self):
        document = APIClient().get("/openapi.json").json()
        parameters = {p["name"] for p in document["paths"]["/v2/manage/repos"]["get"]["parameters"]}
        assert parameters == {
            "namespace", "name", "category", "is_public", "limit", "offset", "order_column", "order_type", "filter",
        }  # fmt: skip

    def test_documented_list_fields_match_the_answer(self, api, namespace, owner):
        services.repository_create(namespace=namespace, name="a", is_public=True, creator=owner, actor=OPERATOR)
        document = APIClient().get("/openapi.json").json()
        schema = document["paths"]["/v2/manage/repos"]["get"]["responses"]["200"]["content"]["application/json"]
        page_ref = schema["schema"]["$ref"].rsplit("/", 1)[1]
        page = document["components"]["schemas"][page_ref]
        assert page["type"] == "array"
        item_ref = page["items"]["$ref"].rsplit("/", 1)[1]
        documented = set(document["components"]["schemas"][item_ref]["properties"])
        assert documented == set(api.get("/v2/manage/repos").json()[0])

    def test_swagger_ui_is_served_from_the_project(self, client):
        response = client.get("/docs/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
        assert "cdn" not in page.lower()


def test_every_management_operation_documents_the_too_long_url(db):
    """Any URL can be refused as 414 (SVCSTG.SWR.4141001, swr/middleware.py) before it reaches a view: a client
    that checks answers against the document (schemathesis in tests/test_fuzz.py) must find it there."""
    paths = APIClient().get("/openapi.json").json()["paths"]
    operations = [
        (path, method, operation)
        for path, methods in paths.items()
        if path.startswith(("/v2/manage/", "/v3/manage/"))
        for method, operation in methods.items()
    ]
    assert operations
    assert [(path, method) for path, method, operation in operations if "414" not in operation["responses"]] == []
