"""Races over real HTTP (issue 11, must-haves 2 and 3): gunicorn in its own processes, on the test database.

Spec section 1: every answer a client can cause is a 4xx with the error body, never a 5xx;
section 4: DELETE of an organization answers 204, or 406 while it holds repositories; section 7:
the quotas' ``used`` is what the tenant owns. Requests are released together (threading.Barrier)
round after round, each test bounded in rounds and in time, and after every round the database
must say what the answers said: one 204 per deleted row, usage counters equal to the rows, no
tenant past its quota.
"""

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from django.db import transaction

from swr import services
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission, Tenant

from .helpers import OPERATOR, grant_entry, http_request

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

NAMESPACE_NOT_FOUND = "SVCSTG.SWR.4040058"
REPOSITORY_NOT_FOUND = "SVCSTG.SWR.4040010"
PERMISSION_NOT_FOUND = "SVCSTG.SWR.4040078"
NAMESPACE_NOT_EMPTY = "SVCSTG.SWR.4060074"

# Each test stops starting rounds after this many seconds (the rounds it ran must all pass).
TIME_LIMIT = 45


def call(url, method, body=None, token=None):
    """One HTTP request: (status, error code or None)."""
    status, _, content = http_request(url, method, body=body, token=token, timeout=60)
    if status < 400:
        return status, None
    try:
        return status, json.loads(content).get("error_code")
    except ValueError:
        return status, content.decode()[:200]


def together(*requests):
    """Run the callables in threads released at the same moment; their results, in order."""
    barrier = threading.Barrier(len(requests))

    def run(request):
        barrier.wait()
        return request()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(run, requests))


def behind_a_lock(row, seconds, *requests):
    """:func:`together`, while this test holds ``row`` locked (``FOR UPDATE``; on SQLite, the database's
    write lock) for ``seconds``: the requests that reach their transaction meanwhile wait for it, as
    behind any slow writer, and then go at once (how two deletes meet inside the window between
    reading a row and removing it)."""
    with ThreadPoolExecutor(max_workers=1) as runner, transaction.atomic():
        list(type(row).objects.select_for_update().filter(pk=row.pk))
        answers = runner.submit(together, *requests)
        time.sleep(seconds)
    return answers.result()


def assert_usage_is_the_rows():
    """Every tenant's usage counters equal the rows it owns (what swr.services.usage_recount would set)."""
    for tenant in Tenant.objects.all():
        namespaces = Namespace.objects.filter(tenant=tenant).count()
        repositories = Repository.objects.filter(namespace__tenant=tenant).count()
        counters = (tenant.namespace_count, tenant.repository_count)
        assert counters == (namespaces, repositories), (
            f"{tenant.name}: counters {counters}, rows {namespaces, repositories}"
        )
        assert namespaces <= tenant.quota("namespace"), f"{tenant.name} owns {namespaces} organizations"
        assert repositories <= tenant.quota("repository"), f"{tenant.name} owns {repositories} repositories"


def rounds(count):
    """Round numbers, up to ``count``, while the time limit lasts."""
    deadline = time.monotonic() + TIME_LIMIT
    for number in range(count):
        if number and time.monotonic() > deadline:
            return
        yield number


# Must-have 2: of parallel DELETEs of one thing, exactly one answers 204; only its row gives back a place.


@pytest.mark.parametrize("target", ["repository", "namespace", "namespace grant", "repository grant"])
def test_parallel_deletes_of_one_object_answer_one_204(server, token, owner, tenant, bob, target):
    """20 DELETEs of one object at once: one 204, nineteen 404 with the code of what is missing.

    Another organization and repository stay, so a counter lowered twice would show (it never goes below 0).
    """
    keep = services.namespace_create(name="keep", tenant=tenant, creator=owner, actor=OPERATOR)
    services.repository_create(namespace=keep, name="keep", is_public=False, creator=owner, actor=OPERATOR)
    code = {
        "repository": REPOSITORY_NOT_FOUND,
        "namespace": NAMESPACE_NOT_FOUND,
        "namespace grant": PERMISSION_NOT_FOUND,
        "repository grant": PERMISSION_NOT_FOUND,
    }[target]
    for number in rounds(12):
        namespace = services.namespace_create(name=f"gone-{number}", tenant=tenant, creator=owner, actor=OPERATOR)
        repository = services.repository_create(
            namespace=namespace, name="app", is_public=False, creator=owner, actor=OPERATOR
        )
        base = f"{server}/v2/manage/namespaces/{namespace.name}"
        # The DELETE's URL and body, and the row it removes.
        if target == "namespace":
            services.repository_delete(repository=repository, actor=OPERATOR)
            url, body, row = base, None, namespace
        elif target == "repository":
            url, body, row = f"{base}/repos/app", None, repository
        elif target == "namespace grant":
            services.grants_create(obj=namespace, levels={bob: 1}, actor=OPERATOR)
            url, body, row = f"{base}/access", [str(bob.pk)], NamespacePermission.objects.get(user=bob)
        else:
            services.grants_create(obj=repository, levels={bob: 1}, actor=OPERATOR)
            url, body, row = f"{base}/repos/app/access", [str(bob.pk)], RepositoryPermission.objects.get(user=bob)
        requests = [partial(call, url, "DELETE", body, token)] * 20
        # Every other round, the DELETEs also line up behind a lock on that row.
        answers = behind_a_lock(row, 0.5, *requests) if number % 2 else together(*requests)
        print(number, Counter(answers))
        assert sorted(answers, key=str) == [(204, None)] + [(404, code)] * 19, (number, Counter(answers))
        assert Namespace.objects.filter(pk=namespace.pk).exists() == (target != "namespace")
        assert Repository.objects.filter(pk=repository.pk).exists() == (target not in ("namespace", "repository"))
        assert not NamespacePermission.objects.filter(namespace=namespace, user=bob).exists()
        assert not RepositoryPermission.objects.filter(repository=repository, user=bob).exists()
        assert_usage_is_the_rows()


# Must-have 3: a DELETE racing a write into what it deletes ends in one clean outcome, never a 5xx.

DELETE_NAMESPACE = {(204, None), (404, NAMESPACE_NOT_FOUND), (406, NAMESPACE_NOT_EMPTY)}
DELETE_REPOSITORY = {(204, None), (404, REPOSITORY_NOT_FOUND)}

# name: what is deleted, the grant bob holds before the round (None, "namespace" or "repository"),
# the write (path under the organization, method, body), its allowed answers, the DELETE's allowed answers.
RACES = {
    "organization / repository create": (
        "namespace", None, ("/repos", "POST", {"repository": "new", "is_public": False}),
        {(201, None), (404, NAMESPACE_NOT_FOUND)}, DELETE_NAMESPACE,
    ),
    "organization / organization grant": (
        "namespace", None, ("/access", "POST", "entry"),
        {(201, None), (404, NAMESPACE_NOT_FOUND)}, DELETE_NAMESPACE,
    ),
    "organization / organization grant change": (
        "namespace", "namespace", ("/access", "PATCH", "entry"),
        {(201, None), (404, NAMESPACE_NOT_FOUND)}, DELETE_NAMESPACE,
    ),
    "repository / repository grant": (
        "repository", None, ("/repos/app/access", "POST", "entry"),
        {(201, None), (404, REPOSITORY_NOT_FOUND)}, DELETE_REPOSITORY,
    ),
    "repository / repository grant removal": (
        "repository", "repository", ("/repos/app/access", "DELETE", "id"),
        {(204, None), (404, REPOSITORY_NOT_FOUND)}, DELETE_REPOSITORY,
    ),
    "repository / repository update": (
        "repository", None, ("/repos/app", "PATCH", {"is_public": True, "description": "changed"}),
        {(201, None), (404, REPOSITORY_NOT_FOUND)}, DELETE_REPOSITORY,
    ),
}  # fmt: skip


@pytest.mark.parametrize("race", list(RACES))
def test_delete_racing_a_write_into_it_never_answers_5xx(server, token, owner, tenant, bob, race):
    """DELETE an organization (or a repository) and write into it at the same moment, 30 rounds.

    The write answers its success or 404 for the vanished parent; the DELETE answers 204, or 406
    (the organization got a repository first); the database agrees with the answers.
    """
    deleted, held, (path, method, body), write_allowed, delete_allowed = RACES[race]
    body = {"entry": [grant_entry(bob, 3)], "id": [str(bob.pk)]}.get(body, body) if isinstance(body, str) else body
    for number in rounds(30):
        namespace = services.namespace_create(name=f"race-{number}", tenant=tenant, creator=owner, actor=OPERATOR)
        repository = services.repository_create(
            namespace=namespace, name="app", is_public=False, creator=owner, actor=OPERATOR
        )
        if deleted == "namespace":
            services.repository_delete(repository=repository, actor=OPERATOR)
        if held is not None:
            services.grants_create(
                obj=namespace if held == "namespace" else repository, levels={bob: 1}, actor=OPERATOR
            )
        url = f"{server}/v2/manage/namespaces/{namespace.name}"
        delete_url = url if deleted == "namespace" else f"{url}/repos/app"
        # Sweep the write's start across the DELETE's: -2 to +2 ms, one millisecond a round.
        lag = (number % 5 - 2) / 1000

        def write(url=url, lag=lag):
            time.sleep(max(lag, 0))
            return call(url + path, method, body, token)

        def delete(delete_url=delete_url, lag=lag):
            time.sleep(max(-lag, 0))
            return call(delete_url, "DELETE", None, token)

        written, removed = together(write, delete)
        assert written in write_allowed, (number, written, removed)
        assert removed in delete_allowed, (number, written, removed)
        if deleted == "namespace":
            assert Namespace.objects.filter(pk=namespace.pk).exists() == (removed[0] != 204), (number, written, removed)
            if method == "POST" and path == "/repos":
                # One of the two won: the repository is in the organization (406), or neither exists.
                assert (written[0], removed[0]) in {(201, 406), (404, 204)}, (number, written, removed)
        else:
            assert removed == (204, None), (number, written, removed)
            assert not Repository.objects.filter(pk=repository.pk).exists()
        assert_usage_is_the_rows()


def test_counters_equal_rows_after_a_storm_of_creates_and_deletes(server, make_user, make_tenant, tenant):
    """Two tenants with small quotas; 8 clients per step, released together, create and delete
    organizations and repositories among a few names. No 5xx; afterwards (and /quotas says the same)
    each tenant's counters equal its rows and no tenant owns more than its quota."""
    other = make_tenant("globex")
    clients = []
    for t in (tenant, other):
        t.namespace_quota, t.repository_quota = 2, 3
        t.save()
        admin = make_user(f"admin-{t.name}", t, is_tenant_admin=True)
        clients += [(t, services.token_issue(user=admin, actor=OPERATOR)[1])] * 4
    generator = random.Random(11)
    allowed = {
        ("POST", "namespace"): {201, 400, 409},
        ("DELETE", "namespace"): {204, 404, 406},
        ("POST", "repository"): {201, 400, 404, 409},
        ("DELETE", "repository"): {204, 404},
    }
    seen = Counter()
    for number in rounds(60):
        requests, kinds = [], []
        for t, user_token in clients:
            namespace = f"{t.name}-{generator.randrange(3)}"
            method = generator.choice(["POST", "DELETE"])
            kind = generator.choice(["namespace", "repository", "repository"])
            if kind == "namespace":
                url = f"{server}/v2/manage/namespaces" + (f"/{namespace}" if method == "DELETE" else "")
                body = {"namespace": namespace} if method == "POST" else None
            else:
                name = f"app-{generator.randrange(2)}"
                url = f"{server}/v2/manage/namespaces/{namespace}/repos" + (f"/{name}" if method == "DELETE" else "")
                body = {"repository": name, "is_public": False} if method == "POST" else None
            requests.append(
                lambda url=url, method=method, body=body, user_token=user_token: call(url, method, body, user_token)
            )
            kinds.append((method, kind))
        for (method, kind), (status, code) in zip(kinds, together(*requests), strict=True):
            seen[method, kind, status] += 1
            assert status in allowed[method, kind], (number, method, kind, status, code)
        assert_usage_is_the_rows()
    for t, user_token in clients[::4]:
        t.refresh_from_db()
        answer = http_request(f"{server}/v2/manage/projects/{t.project_id}/quotas", token=user_token)
        assert answer.status == 200, answer
        quotas = {q["quota_key"]: q["used"] for q in json.loads(answer.body)["quotas"]}
        owned = {
            "namespace": Namespace.objects.filter(tenant=t).count(),
            "repository": Repository.objects.filter(namespace__tenant=t).count(),
        }
        assert quotas == owned
    # The storm did what it is for: creates and deletes that succeeded, ones that lost, quotas reached.
    assert {status for (_, _, status) in seen} >= {201, 204, 400, 404}, seen
