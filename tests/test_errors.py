"""Spec section 1: every error answer, from DRF or from Django itself, is the SWR error body."""

import json

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from registry import urls
from swr import errors

from .helpers import assert_swr_error, post

pytestmark = pytest.mark.django_db


def _handler(name):
    module, _, function = getattr(urls, name).rpartition(".")
    return getattr(__import__(module, fromlist=[function]), function)


def test_django_500_handler():
    response = _handler("handler500")(RequestFactory().get("/"))
    assert_swr_error(response, 500, "SVCSTG.SWR.5000046")


def test_django_403_handler():
    response = _handler("handler403")(RequestFactory().get("/"), Exception("no"))
    assert_swr_error(response, 403, "SVCSTG.SWR.4039002")


def test_disallowed_host_answers_400_json():
    """Django rejects an unknown Host header itself (handler400)."""
    response = APIClient().get("/v2/manage/namespaces", HTTP_HOST="evil.example")
    assert_swr_error(response, 400, "SVCSTG.SWR.4000014")


REGISTRY_ROUTES = ["/v2/", "/v2/group/web/manifests/latest", "/v2/group/web/blobs/uploads/", "/service/token"]


def _oci_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    [error] = json.loads(response.content)["errors"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize("path", REGISTRY_ROUTES)
def test_django_handlers_answer_the_oci_body_on_registry_routes(path):
    """Spec section 9: a registry client parses the OCI body, also when Django answers before or around the
    registry's views (an unknown Host header, a failure in a middleware): 400 UNSUPPORTED, 403 DENIED, 500
    UNKNOWN, as gunicorn's own answers on those routes; the API version header under /v2/."""
    request = RequestFactory().get(path)
    answers = {
        "400": _handler("handler400")(request, Exception("bad")),
        "403": _handler("handler403")(request, Exception("no")),
        "500": _handler("handler500")(request),
    }
    _oci_error(answers["400"], 400, "UNSUPPORTED")
    _oci_error(answers["403"], 403, "DENIED")
    assert "Internal" in _oci_error(answers["500"], 500, "UNKNOWN")["message"]
    for response in answers.values():
        assert response.has_header("Docker-Distribution-API-Version") == path.startswith("/v2/")


@pytest.mark.parametrize("path", REGISTRY_ROUTES)
def test_an_unknown_host_on_a_registry_route_answers_the_oci_body(path):
    error = _oci_error(APIClient().get(path, HTTP_HOST="evil.example"), 400, "UNSUPPORTED")
    assert "Host header" in error["message"]


def test_the_token_endpoints_body_limits_answer_the_oci_body(settings):
    """/service/token is a registry route: the body checks made before any view answer it in the OCI body too
    (413 SIZE_INVALID for a body over SWR_MAX_BODY_BYTES, 400 UNSUPPORTED for a malformed Content-Length)."""
    big = b"x" * (settings.SWR_MAX_BODY_BYTES + 1)
    response = APIClient().generic("POST", "/service/token", big, content_type="application/x-www-form-urlencoded")
    _oci_error(response, 413, "SIZE_INVALID")
    response = APIClient().generic("POST", "/service/token", "a=b", CONTENT_LENGTH="ten")
    assert "Content-Length" in _oci_error(response, 400, "UNSUPPORTED")["message"]
    assert not response.has_header("Docker-Distribution-API-Version")  # the token endpoint's answers carry none


def test_invalid_content_length():
    response = APIClient().generic("POST", "/v2/manage/namespaces", "{}", CONTENT_LENGTH="ten")
    body = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert "Content-Length" in body["error_msg"]


@pytest.mark.parametrize("segment", ["%00", "a%00b", "%FF", "x" * 300, "Group", "%20", "..", "group%2F"])
def test_odd_namespace_in_the_path_is_not_found(api, namespace, segment):
    response = post(api, f"/v2/manage/namespaces/{segment}/repos", {"repository": "a", "is_public": True})
    assert response.status_code == 404
    assert response.json()["error_code"] in ("SVCSTG.SWR.4040058", "SVCSTG.SWR.4040083")


ODD_VALUES = [None, True, False, 0, -1, 1.5, 10**30, "", " ", "\x00", "é" * 5, "a" * 5000, [], [1], {}, {"a": "b"}]


@pytest.mark.parametrize("field", ["repository", "is_public", "category", "description"])
def test_no_value_of_any_type_gives_a_500(api, namespace, field):
    """Nothing a client puts in a field may end in a 500."""
    for value in ODD_VALUES:
        body = {"repository": "base", "is_public": True, field: value}
        response = post(api, "/v2/manage/namespaces/group/repos", body)
        assert response.status_code in (201, 400, 409), (value, response.content)
        if response.status_code != 201:
            assert response.json()["error_code"].startswith("SVCSTG.SWR.4")


def test_error_classes_carry_status_and_code():
    error = errors.RepositoryExists()
    assert (error.status_code, error.error_code) == (409, "SVCSTG.SWR.4090006")
    body = errors.error_body(error.error_code, error.message)
    assert body["error_msg"] == body["errorMessage"] == error.message


def test_a_pool_that_gave_no_connection_is_answered_as_busy_or_away():
    """With gevent workers, a request waits for a connection of its worker's pool; when none comes free in
    time (load, or the database away) the 503 says both, not only "database unreachable" (a tester saw 503
    "unreachable" under load with the database up)."""
    from django import db
    from psycopg_pool import PoolTimeout

    from swr.api.errors import to_swr_error

    try:
        try:
            raise PoolTimeout("couldn't get a connection after 3.00 sec")
        except PoolTimeout as cause:
            raise db.OperationalError(str(cause)) from cause
    except db.OperationalError as exc:
        error = to_swr_error(exc)
    assert (error.status_code, error.error_code) == (503, "SVCSTG.SWR.5030000")
    assert "busy" in error.message
    assert "away" in error.message
