"""End to end over real HTTP: gunicorn in its own processes, on the test database.

These tests show what unit tests cannot: that two requests racing for one
name, in different processes, end in one 201 and 409s, never a 500.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from swr.models import Repository

from .helpers import assert_swr_error, http_request

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_readme_flow(server, token):
    status, headers, body = http_request(f"{server}/v2/manage/namespaces", body={"namespace": "group"}, token=token)
    assert (status, body) == (201, b"{}")
    assert headers["X-Request-Id"]
    status, _, body = http_request(
        f"{server}/v2/manage/namespaces/group/repos",
        body={"repository": "busybox", "category": "linux", "description": "a busybox repository", "is_public": True},
        token=token,
    )
    assert (status, body) == (201, b"{}")
    status, _, body = http_request(
        f"{server}/v2/manage/namespaces/group/repos",
        raw=b"repository=nginx%2Fweb&is_public=false&category=arms",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        token=token,
    )
    assert (status, body) == (201, b"{}")
    assert sorted(Repository.objects.values_list("name", "category")) == [("busybox", "linux"), ("nginx/web", "arm")]


@pytest.mark.parametrize(
    ("path", "method", "raw", "status", "code"),
    [
        ("/nowhere", "GET", None, 404, "SVCSTG.SWR.4040083"),
        ("/v2/manage/namespaces", "DELETE", None, 405, "SVCSTG.SWR.4050000"),
        ("/v2/manage/namespaces", "POST", b"{oops", 400, "SVCSTG.SWR.4000014"),
        ("/v2/manage/namespaces", "POST", b"x" * (1024 * 1024 + 1), 413, "SVCSTG.SWR.4131001"),
    ],
)
def test_errors_over_http_are_json(server, token, path, method, raw, status, code):
    assert_swr_error(http_request(f"{server}{path}", method=method, raw=raw, token=token), status, code)


def test_request_without_token_over_http(server):
    answer = http_request(f"{server}/v2/manage/namespaces", body={"namespace": "group"})
    assert_swr_error(answer, 401, "SVCSTG.SWR.4010000")


def _race(count, make_request):
    barrier = threading.Barrier(count)

    def one(i):
        barrier.wait()
        return make_request(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_racing_creates_of_one_repository(server, token, namespace):
    """Spec section 3: exactly one of the racing requests wins, the others get 409, never 500."""
    url = f"{server}/v2/manage/namespaces/group/repos"
    results = _race(
        16, lambda i: http_request(url, body={"repository": "contested", "is_public": i % 2 == 0}, token=token)
    )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [409] * 15, [r[2] for r in results]
    for answer in results:
        if answer.status == 409:
            assert_swr_error(answer, 409, "SVCSTG.SWR.4090006")
    assert Repository.objects.filter(name="contested").count() == 1


def test_racing_creates_of_one_namespace(server, token):
    url = f"{server}/v2/manage/namespaces"
    results = _race(12, lambda i: http_request(url, body={"namespace": "contested"}, token=token))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] + [409] * 11, [r[2] for r in results]


def test_parallel_creates_of_distinct_repositories(server, token, namespace):
    url = f"{server}/v2/manage/namespaces/group/repos"
    results = _race(16, lambda i: http_request(url, body={"repository": f"app-{i}", "is_public": True}, token=token))
    assert [status for status, _, _ in results] == [201] * 16
    assert Repository.objects.filter(namespace=namespace).count() == 16


def test_oversized_body_always_gets_its_413(server, token):
    """The client must read the 413, not a reset connection (the server drops the unread body first)."""
    for _ in range(20):
        answer = http_request(f"{server}/v2/manage/namespaces", raw=b"x" * (3 * 1024 * 1024), token=token)
        assert_swr_error(answer, 413, "SVCSTG.SWR.4131001")


def test_quota_holds_under_parallel_creates(server, token, namespace, tenant):
    """Spec: quotas are enforced on create, also when creates race: never more rows than the quota."""
    tenant.repository_quota = 5
    tenant.save()
    url = f"{server}/v2/manage/namespaces/group/repos"
    results = _race(16, lambda i: http_request(url, body={"repository": f"q-{i}", "is_public": True}, token=token))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] * 5 + [400] * 11, [r[2] for r in results]
    for answer in results:
        if answer.status == 400:
            assert_swr_error(answer, 400, "SVCSTG.SWR.4000098")
    assert Repository.objects.filter(namespace=namespace).count() == 5


def test_namespace_quota_holds_under_parallel_creates(server, token, tenant):
    tenant.namespace_quota = 3
    tenant.save()
    url = f"{server}/v2/manage/namespaces"
    results = _race(12, lambda i: http_request(url, body={"namespace": f"ns-{i}"}, token=token))
    assert sorted(status for status, _, _ in results) == [201] * 3 + [400] * 9


def test_load_of_mixed_creates_ends_with_exactly_the_promised_rows(server, token, namespace, tenant):
    """32 clients x 10 creates: contested names, distinct names, and more names than the quota allows.

    No 5xx; every 201 is a stored row; a contested name is won once; the quota is filled exactly.
    """
    tenant.repository_quota = 150
    tenant.save()
    url = f"{server}/v2/manage/namespaces/group/repos"
    clients, per_client = 32, 10

    def client(c):
        answers = []
        for i in range(per_client):
            name = f"shared-{i}" if i % 2 == 0 else f"c{c}-{i}"
            status, _, body = http_request(url, body={"repository": name, "is_public": False}, token=token)
            answers.append((name, status, json.loads(body).get("error_code") if status != 201 else None))
        return answers

    answers = [a for batch in _race(clients, client) for a in batch]
    assert len(answers) == clients * per_client
    assert {status for _, status, _ in answers} <= {201, 400, 409}, answers
    assert {code for _, status, code in answers if status == 400} <= {"SVCSTG.SWR.4000098"}
    assert {code for _, status, code in answers if status == 409} <= {"SVCSTG.SWR.4090006"}
    won = [name for name, status, _ in answers if status == 201]
    assert len(won) == len(set(won))
    stored = set(Repository.objects.filter(namespace=namespace).values_list("name", flat=True))
    assert stored == set(won)
    assert len(stored) == 150
