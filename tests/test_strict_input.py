"""Spec section 1, "types are strict": every value a client sends has the type the spec names, or the answer is 400.

Strings are JSON strings (a number is not turned into text), permission levels the
JSON numbers 1, 3 or 7, ids and numbers ASCII digits only, bodies nested at most 32
levels, and a chunked body is read like any other (issue 11, must-have 5).
"""

import http.client
import json
import logging
import sys
import urllib.parse

import pytest

from swr import services
from swr.api.parsers import MAX_DEPTH
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission

from .helpers import OPERATOR, assert_swr_error, free_port, grant_entry, login_body, post, send, serving

NS = "/v2/manage/namespaces"
REPOS = "/v2/manage/namespaces/group/repos"
WEB = "/v2/manage/namespaces/group/repos/web"
NS_ACCESS = "/v2/manage/namespaces/group/access"
REPO_ACCESS = "/v2/manage/namespaces/group/repos/web/access"
TOKENS = "/v3/auth/tokens"


@pytest.fixture
def web(namespace, owner):
    return services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)


def grants_of(user):
    return (
        NamespacePermission.objects.filter(user=user).count() + RepositoryPermission.objects.filter(user=user).count()
    )


def _grant_with(field):
    return lambda value, user: [{"user_id": str(user.pk), "user_name": "bob", "auth": 1, field: value}]


# Every string field of every request body, each with a way to put a value in it.
STRING_FIELDS = {
    "namespace create: namespace": ("POST", NS, lambda v, u: {"namespace": v}),
    "repository create: repository": ("POST", REPOS, lambda v, u: {"repository": v, "is_public": True}),
    "repository create: category": (
        "POST",
        REPOS,
        lambda v, u: {"repository": "base", "is_public": True, "category": v},
    ),
    "repository create: description": (
        "POST",
        REPOS,
        lambda v, u: {"repository": "base", "is_public": True, "description": v},
    ),
    "repository update: category": ("PATCH", WEB, lambda v, u: {"is_public": True, "category": v}),
    "repository update: description": ("PATCH", WEB, lambda v, u: {"is_public": True, "description": v}),
    **{
        f"{where} grant {method}: {field}": (method, url, _grant_with(field))
        for where, url in (("namespace", NS_ACCESS), ("repository", REPO_ACCESS))
        for method in ("POST", "PATCH")
        for field in ("user_id", "user_name")
    },
    "namespace grant DELETE: user id": ("DELETE", NS_ACCESS, lambda v, u: [v]),
    "repository grant DELETE: user id": ("DELETE", REPO_ACCESS, lambda v, u: [v]),
    "login: user name": ("POST", TOKENS, lambda v, u: _login_with("name", v)),
    "login: password": ("POST", TOKENS, lambda v, u: _login_with("password", v)),
    "login: domain name": ("POST", TOKENS, lambda v, u: _login_with("domain", {"name": v})),
}


def _login_with(field, value):
    body = login_body()
    body["auth"]["identity"]["password"]["user"][field] = value
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("value", [123, 1.5], ids=["integer", "decimal"])
@pytest.mark.parametrize("field", STRING_FIELDS)
def test_a_string_field_refuses_a_number(api, web, bob, alice, field, value):
    """A field the spec calls a string must be a JSON string: a number is 400, never stored as its text."""
    if "PATCH" in field:  # a grant to change, so that a coerced value would succeed
        NamespacePermission.objects.create(user=bob, namespace=web.namespace, level=1)
        RepositoryPermission.objects.create(user=bob, repository=web, level=1)
    method, url, body = STRING_FIELDS[field]
    if "DELETE" in field and value == 123:
        value = bob.pk  # the id of a real user, as a number: DRF's CharField would read it as "<id>"
        NamespacePermission.objects.create(user=bob, namespace=web.namespace, level=1)
        RepositoryPermission.objects.create(user=bob, repository=web, level=1)
    before = (Namespace.objects.count(), Repository.objects.count(), grants_of(bob))
    web.refresh_from_db()
    client = api if url != TOKENS else type(api)()
    response = send(client, method, url, body(value, bob))
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert "must be a string, not a number" in error["error_msg"], error
    assert (Namespace.objects.count(), Repository.objects.count(), grants_of(bob)) == before
    changed = Repository.objects.get(pk=web.pk)
    assert (changed.category, changed.description) == (web.category, web.description)


@pytest.mark.django_db
def test_repository_given_as_a_number_is_not_stored_as_text(api, namespace):
    """The issue's example: {"repository": 123} was stored as "123"."""
    response = send(api, "POST", REPOS, {"repository": 123, "is_public": True})
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert error["error_msg"] == "Invalid repository: must be a string, not a number."
    assert error["details"] == [{"field": "repository", "error_msg": "must be a string, not a number."}]
    assert not Repository.objects.exists()


@pytest.mark.django_db
def test_form_bodies_still_carry_strings(api, namespace):
    """Form bodies hold text only: the strict string fields read them as before."""
    response = api.post(REPOS, {"repository": "123", "is_public": "true", "description": "42"})
    assert response.status_code == 201, response.content
    assert Repository.objects.get().description == "42"


# A permission level is the JSON number 1, 3 or 7; nothing that merely reads as one.
NOT_A_LEVEL = ["7", "1", " 3", 7.0, 3.0, 1.0, True, False, None, [7], {"auth": 7}, "manage", 7.5]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("url", [NS_ACCESS, REPO_ACCESS], ids=["namespace", "repository"])
@pytest.mark.parametrize("auth", NOT_A_LEVEL, ids=repr)
def test_permission_level_is_the_json_number_1_3_or_7(api, web, bob, url, method, auth):
    if method == "PATCH":
        NamespacePermission.objects.create(user=bob, namespace=web.namespace, level=1)
        RepositoryPermission.objects.create(user=bob, repository=web, level=1)
    before = sorted(NamespacePermission.objects.values_list("user", "level")) + sorted(
        RepositoryPermission.objects.values_list("user", "level")
    )
    response = send(api, method, url, [grant_entry(bob, auth)])
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4001066")
    assert error["error_msg"].startswith("Invalid permission value "), error
    assert "7 (manage), 3 (edit) or 1 (read)" in error["error_msg"]
    after = sorted(NamespacePermission.objects.values_list("user", "level")) + sorted(
        RepositoryPermission.objects.values_list("user", "level")
    )
    assert after == before


@pytest.mark.django_db
@pytest.mark.parametrize("auth", [1, 3, 7])
def test_the_three_levels_are_accepted(api, web, bob, auth):
    response = send(api, "POST", REPO_ACCESS, [grant_entry(bob, auth)])
    assert response.status_code == 201, response.content
    assert RepositoryPermission.objects.get(user=bob).level == auth


# Strings that str.isdigit() or int() accept but that are not ids written in ASCII digits, and ids no row can have.
NOT_AN_ID = [
    "²",  # superscript two: isdigit() is True, int() refuses it (was a 500)
    "①",  # circled one: the same
    "٣",  # Arabic-Indic three: int() reads it as 3
    "３",  # full-width three
    "1" * 30,  # beyond the id column (was a 500 on SQLite: OverflowError)
    str(2**63),  # one past the largest id
    "-1",
    "+1",
    " 1",
    "1 ",
    "1_0",
    "1.0",
    "0x1",
    "0",
]


@pytest.mark.django_db
@pytest.mark.parametrize("user_id", NOT_AN_ID, ids=repr)
@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", NS_ACCESS), ("PATCH", NS_ACCESS), ("POST", REPO_ACCESS), ("PATCH", REPO_ACCESS)],
    ids=["namespace-POST", "namespace-PATCH", "repository-POST", "repository-PATCH"],
)
def test_grant_user_id_is_ascii_digits_within_the_id_range(api, web, bob, method, url, user_id):
    response = send(api, method, url, [{"user_id": user_id, "user_name": "x", "auth": 1}])
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert f"{user_id!r} is not a user id: user ids are ASCII digits" in error["error_msg"], error
    assert error["details"][0]["field"].endswith("user_id")
    assert grants_of(bob) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("user_id", NOT_AN_ID, ids=repr)
@pytest.mark.parametrize("url", [NS_ACCESS, REPO_ACCESS], ids=["namespace", "repository"])
def test_grant_delete_ids_are_ascii_digits_within_the_id_range(api, web, bob, url, user_id):
    NamespacePermission.objects.create(user=bob, namespace=web.namespace, level=1)
    RepositoryPermission.objects.create(user=bob, repository=web, level=1)
    response = send(api, "DELETE", url, [str(bob.pk), user_id])
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert f"{user_id!r} is not a user id" in error["error_msg"], error
    assert grants_of(bob) == 2


# Numbers in query strings: ASCII digits only (int() reads all of these).
NOT_ASCII_DIGITS = ["1_0", "１０", "٣", " 10", "10 ", "+10", "\t10"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", NOT_ASCII_DIGITS, ids=repr)
@pytest.mark.parametrize("name", ["limit", "offset"])
@pytest.mark.parametrize("packed", [False, True], ids=["parameter", "filter"])
def test_query_numbers_are_ascii_digits_only(api, web, name, value, packed):
    query = f"filter={name}::{value}" if packed else f"{name}={value}"
    response = api.get(f"/v2/manage/repos?{urllib.parse.quote(query, safe='=&')}")
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert error["details"][0]["field"] == name
    assert f"{value!r} is not a whole number" in error["error_msg"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["-0", "1" * 25, "9" * 4000], ids=["minus-zero", "25-digits", "4000-digits"])
def test_offset_is_a_whole_number_within_range(api, web, value):
    """Spec section 1: ids and numbers are ASCII digits within range. (A longer number makes the request
    line longer than 4 KiB, which is answered 414 before the query is read: tests/test_request_limits.py.)"""
    error = assert_swr_error(api.get(f"/v2/manage/repos?offset={value}"), 400, "SVCSTG.SWR.4000014")
    assert error["details"][0]["field"] == "offset"


@pytest.mark.django_db
def test_ascii_numbers_with_leading_zeros_are_numbers(api, web):
    response = api.get("/v2/manage/repos?limit=010&offset=00")
    assert response.status_code == 200
    assert response["Content-Range"] == "0-1/1"


@pytest.mark.django_db
@pytest.mark.parametrize("length", [" 2", "2 ", "+2", "0_2", "２", "٢"], ids=repr)
def test_content_length_is_ascii_digits_only(api, length):
    response = post(api, NS, '{"namespace":"ok"}', CONTENT_LENGTH=length)
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert "Content-Length" in error["error_msg"]
    assert not Namespace.objects.exists()


@pytest.mark.django_db
def test_content_length_of_many_digits_is_too_large(api):
    response = post(api, NS, "{}", CONTENT_LENGTH="9" * 5000)
    assert_swr_error(response, 413, "SVCSTG.SWR.4131001")


# Bodies nested too deep: every endpoint that reads a body, the unauthenticated login included.
BODY_ENDPOINTS = [
    ("POST", NS),
    ("POST", REPOS),
    ("PATCH", WEB),
    ("POST", NS_ACCESS),
    ("PATCH", NS_ACCESS),
    ("DELETE", NS_ACCESS),
    ("POST", REPO_ACCESS),
    ("PATCH", REPO_ACCESS),
    ("DELETE", REPO_ACCESS),
    ("POST", TOKENS),
]


def nested(levels: int, inner: str = "1", kind: str = "list") -> str:
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    return opening * levels + inner + closing * levels


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize(("method", "url"), BODY_ENDPOINTS, ids=[f"{m} {u}" for m, u in BODY_ENDPOINTS])
def test_body_nested_thousands_of_levels_is_400_without_a_stack_trace(api, web, caplog, method, url, kind):
    """3,000 levels raised RecursionError in the JSON decoder: a 500, and a stack trace logged per request."""
    client = api if url != TOKENS else type(api)()
    with caplog.at_level(logging.WARNING):
        response = send(client, method, url, nested(3000, kind=kind))
    error = assert_swr_error(response, 400, "SVCSTG.SWR.4000014")
    assert error["error_msg"] == f"Malformed request body: JSON nested deeper than {MAX_DEPTH} levels."
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


@pytest.mark.django_db
@pytest.mark.parametrize("url", [NS_ACCESS, REPO_ACCESS], ids=["namespace", "repository"])
def test_bodies_nest_at_most_32_levels(api, web, bob, url):
    """An ignored field nested 31 levels puts the body at 33: refused; at 32 it is read (spec section 1)."""

    def body(levels):  # the list and the entry are two levels
        return f'[{{"user_id": "{bob.pk}", "auth": 1, "note": {nested(levels - 2)}}}]'

    error = assert_swr_error(send(api, "POST", url, body(MAX_DEPTH + 1)), 400, "SVCSTG.SWR.4000014")
    assert "nested deeper than 32 levels" in error["error_msg"]
    assert grants_of(bob) == 0
    assert send(api, "POST", url, body(MAX_DEPTH)).status_code == 201
    assert grants_of(bob) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["list", "object"])
def test_login_body_nested_33_levels_is_refused(alice, kind):
    body = login_body()
    body["auth"]["note"] = json.loads(nested(MAX_DEPTH - 1, kind=kind))  # 33 with the outer object
    from rest_framework.test import APIClient

    error = assert_swr_error(send(APIClient(), "POST", TOKENS, body), 400, "SVCSTG.SWR.4000014")
    assert "nested deeper than 32 levels" in error["error_msg"]


# Chunked bodies, over real HTTP.


def chunked_request(base_url, method, path, body: bytes, token=None, chunk=16 * 1024):
    """Send ``body`` with Transfer-Encoding: chunked and no Content-Length; returns (status, headers, body)."""
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    pieces = (body[i : i + chunk] for i in range(0, len(body), chunk))
    try:
        connection.request(method, path, body=pieces, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
class TestChunkedBodiesOnGunicorn:
    """gunicorn de-chunks a body without a Content-Length; Django read none of it and saw an empty body."""

    def test_chunked_create_is_read(self, server, token):
        status, headers, body = chunked_request(server, "POST", NS, b'{"namespace": "chunky"}', token, chunk=5)
        assert (status, body) == (201, b"{}")
        assert Namespace.objects.filter(name="chunky").exists()

    def test_chunked_grant_is_read(self, server, token, namespace, bob):
        payload = json.dumps([grant_entry(bob, 3)]).encode()
        status, _, body = chunked_request(server, "POST", NS_ACCESS, payload, token, chunk=7)
        assert (status, body) == (201, b"{}")
        assert NamespacePermission.objects.get(user=bob).level == 3

    @pytest.mark.parametrize("extra", [1, 512 * 1024])
    def test_chunked_body_over_the_limit_is_413(self, server, token, settings, extra):
        payload = b'{"namespace": "big", "pad": "' + b"x" * (settings.SWR_MAX_BODY_BYTES + extra) + b'"}'
        assert_swr_error(chunked_request(server, "POST", NS, payload, token), 413, "SVCSTG.SWR.4131001")
        assert not Namespace.objects.filter(name="big").exists()

    def test_chunked_body_of_exactly_the_limit_is_read(self, server, token, settings):
        head, tail = b'{"namespace": "edge", "pad": "', b'"}'
        payload = head + b"x" * (settings.SWR_MAX_BODY_BYTES - len(head) - len(tail)) + tail
        assert len(payload) == settings.SWR_MAX_BODY_BYTES
        status, _, body = chunked_request(server, "POST", NS, payload, token)
        assert (status, body) == (201, b"{}")
        assert Namespace.objects.filter(name="edge").exists()

    def test_chunked_body_nested_too_deep_is_400(self, server):
        error = assert_swr_error(
            chunked_request(server, "POST", TOKENS, nested(3000).encode()), 400, "SVCSTG.SWR.4000014"
        )
        assert "nested deeper than 32 levels" in error["error_msg"]


@pytest.fixture(scope="module")
def runserver(django_db_setup, django_db_blocker, tmp_path_factory):
    """Django's development server, as `make run` starts it, serving the test database."""
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"]
    log_path = tmp_path_factory.mktemp("runserver") / "server.log"
    with serving(command, port=port, log_path=log_path, env={"DJANGO_LOG_FORMAT": "plain"}) as base:
        yield base


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_runserver_refuses_a_chunked_body_it_cannot_read(runserver, token):
    """Django's development server (`make run`) hands the application no byte of a chunked body.

    It is refused with a message that says what to do, instead of being read as an empty body.
    """
    answer = chunked_request(runserver, "POST", NS, b'{"namespace": "chunky"}', token)
    error = assert_swr_error(answer, 400, "SVCSTG.SWR.4000014")
    assert "Transfer-Encoding: chunked" in error["error_msg"]
    assert "Content-Length" in error["error_msg"]
    assert not Namespace.objects.filter(name="chunky").exists()
