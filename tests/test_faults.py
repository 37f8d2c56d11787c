"""The database goes away and comes back, under load: a throwaway PostgreSQL cluster that the test stops and starts.

While the database is down, requests answer 503 with the error body quickly
(no hang past the connect timeout); when it returns, the service recovers by
itself; and every create that was answered 201 is in the database afterwards.
A quick restart between requests costs no request. Each runs with gevent
workers (a pool per worker, each connection checked by its socket as it is
taken: swr/db/postgresql) and with sync workers (a connection kept per
worker, checked by Django's CONN_HEALTH_CHECKS).
"""

import json
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from .helpers import ROOT, http_request, start_gunicorn
from .pgcluster import BINDIR, Cluster

pytestmark = pytest.mark.live


def call(url, body=None, token=None, timeout=15):
    """One request (a POST of ``body`` as JSON, else a GET): (status, body text, seconds)."""
    started = time.monotonic()
    status, _, content = http_request(url, body=body, token=token, timeout=timeout)
    return status, content.decode(), time.monotonic() - started


@pytest.fixture(scope="module", params=["gevent", "sync"])
def stack(request):
    """A cluster, a migrated database with a demo user, and gunicorn serving it with persistent connections.

    gevent workers (the default) take connections from a pool, each checked as it is taken (swr/db/postgresql);
    sync workers keep one connection each between requests, which Django checks (CONN_HEALTH_CHECKS).
    """
    if BINDIR is None:
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    cluster = Cluster()
    try:
        cluster.start()
        with psycopg.connect(cluster.url(), autocommit=True) as connection:
            connection.execute("CREATE DATABASE swr_fault")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DATABASE_URL": cluster.url("swr_fault"),
            "DJANGO_CONN_MAX_AGE": "60",
            "DJANGO_DB_CONNECT_TIMEOUT": "2",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
        out = subprocess.run(
            [*manage, "swr_token", "--tenant", "fault", "--user", "fault", "--namespace", "group"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        token = out.stdout.strip().splitlines()[-1]
        # gunicorn.conf.py sets DJANGO_DB_POOL_SIZE for gevent workers: none comes from this environment.
        env["DJANGO_DB_POOL_SIZE"] = None
        with start_gunicorn(cluster.dir / "gunicorn.log", workers=2, worker_class=request.param, env=env) as base:
            yield cluster, base, token
    finally:
        cluster.destroy()


def test_a_restart_of_the_database_between_requests_fails_no_request(stack):
    """Connections kept from before a quick restart are found dead and replaced before they are used:
    every request after it is served. (With gevent workers this failed at times while Django's pool checked
    each connection with a query: psycopg_pool then slept a growing back-off between the dead ones.)"""
    cluster, base, token = stack
    url = f"{base}/v2/manage/namespaces/group/repos"
    for i in range(8):  # each worker holds a connection (each call is a new client connection)
        assert call(url, {"repository": f"before-restart-{i}", "is_public": True}, token)[0] == 201
    cluster.stop()
    cluster.start()
    answers = [call(url, {"repository": f"after-restart-{i}", "is_public": True}, token) for i in range(8)]
    assert [status for status, _, _ in answers] == [201] * 8, answers


def test_database_outage_and_recovery(stack):
    cluster, base, token = stack
    url = f"{base}/v2/manage/namespaces/group/repos"
    created, answers, stop = [], [], threading.Event()

    def load(worker):
        i = 0
        while not stop.is_set():
            name = f"w{worker}-{i}"
            try:
                status, text, seconds = call(url, {"repository": name, "is_public": True}, token)
            except OSError as error:  # a connection cut by the server is not an answer
                answers.append(("error", str(error), 0))
                continue
            answers.append((status, text, seconds))
            if status == 201:
                created.append(name)
            i += 1
            time.sleep(0.02)

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.5)
    before = len(created)
    assert before > 0

    cluster.stop()
    time.sleep(0.5)
    status, text, seconds = call(url, {"repository": "during-outage", "is_public": True}, token)
    assert status == 503, text
    assert json.loads(text)["error_code"] == "SVCSTG.SWR.5030000"
    assert seconds < 5
    assert call(f"{base}/readyz")[0] == 503
    assert call(f"{base}/healthz")[0] == 200
    time.sleep(1.5)

    cluster.start()
    deadline = time.monotonic() + 30
    while call(f"{base}/readyz")[0] != 200:
        assert time.monotonic() < deadline, "the service did not recover within 30 s"
        time.sleep(0.2)
    recovered_at = len(created)
    deadline = time.monotonic() + 15  # a loaded machine may take a while; a create must come through
    while len(created) <= recovered_at + 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)

    assert len(created) > recovered_at, "no create succeeded after the database came back"
    statuses = {status for status, _, _ in answers}
    assert statuses <= {201, 503}, [a for a in answers if a[0] not in (201, 503)][:5]
    assert 503 in statuses
    assert all(seconds < 5 for status, _, seconds in answers if status == 503)

    with psycopg.connect(cluster.url("swr_fault")) as connection:
        stored = {row[0] for row in connection.execute("SELECT name FROM swr_repository")}
    missing = set(created) - stored
    assert not missing, f"answered 201 but not stored: {sorted(missing)[:10]}"
