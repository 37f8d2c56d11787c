"""A database connection kept between requests survives the server going away: Django's CONN_HEALTH_CHECKS.

Without a pool (sync workers, runserver, commands) each thread keeps its
connection for DJANGO_CONN_MAX_AGE seconds, and Django checks it before the
first query of each request. A connection whose backend was terminated, or
whose server restarted, is replaced, so the request is served instead of
failing; while the server is down, the query fails fast with the
OperationalError that the API answers 503 (swr.api.errors). The served case,
gunicorn's workers under load, is tests/test_faults.py.

The tests talk to a throwaway cluster of their own, whatever database the rest of the suite runs on.
"""

import select
import time

import psycopg
import pytest
from django.db import OperationalError

from .pgcluster import BINDIR, Cluster


@pytest.fixture(scope="module")
def cluster():
    if BINDIR is None:
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def db(cluster, django_db_blocker, monkeypatch):
    """A connection to the cluster, configured as the settings configure one without a pool."""
    from django.db.utils import ConnectionHandler

    from registry import settings

    monkeypatch.setenv("DATABASE_URL", cluster.url())
    monkeypatch.setenv("DJANGO_CONN_MAX_AGE", "60")
    monkeypatch.delenv("DJANGO_DB_POOL_SIZE", raising=False)
    connection = ConnectionHandler({"default": settings._database()})["default"]
    assert type(connection).__module__ == "django.db.backends.postgresql.base"  # Django's own backend
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    assert connection.settings_dict["CONN_MAX_AGE"] == 60
    with django_db_blocker.unblock():  # a connection of its own, to its own cluster
        yield connection
        connection.close()


def end_request(connection):
    """What Django does between two requests (django.db.close_old_connections)."""
    connection.close_if_unusable_or_obsolete()


def backend_pid(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_healthy_connection_is_kept_between_requests(db):
    pid = backend_pid(db)
    end_request(db)
    assert db.connection is not None
    assert backend_pid(db) == pid


def test_a_terminated_connection_is_replaced_before_the_next_requests_query(cluster, db):
    pid = backend_pid(db)
    end_request(db)
    with psycopg.connect(cluster.url(), autocommit=True) as side:
        side.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert select.select([db.connection.fileno()], [], [], 10)[0], "the server did not close the connection"
    assert backend_pid(db) != pid


def test_a_connection_kept_across_a_server_restart_is_replaced(cluster, db):
    pid = backend_pid(db)
    end_request(db)
    cluster.stop()
    cluster.start()
    assert backend_pid(db) != pid


def test_while_the_server_is_down_a_query_fails_fast_and_the_service_recovers(cluster, db):
    """The query raises OperationalError (which the API answers 503, not 500) within the connect timeout;
    once the server is back, the next request is served."""
    pid = backend_pid(db)
    end_request(db)
    cluster.stop()
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError):
            backend_pid(db)
        assert time.monotonic() - started < 5
        end_request(db)
    finally:
        cluster.start()
    assert backend_pid(db) != pid


# With a pool (DJANGO_DB_POOL_SIZE: gunicorn's gevent workers), connections are given back at the end of each
# request and taken again by the next one. swr/db/postgresql checks each it takes by its socket, without a query.


@pytest.fixture
def pooled(cluster, django_db_blocker, monkeypatch):
    """A connection to the cluster from a pool of one, configured as the settings configure a pooled one."""
    from django.db.utils import ConnectionHandler

    from registry import settings

    monkeypatch.setenv("DATABASE_URL", cluster.url())
    monkeypatch.setenv("DJANGO_DB_POOL_SIZE", "1")
    connection = ConnectionHandler({"default": settings._database()})["default"]
    assert type(connection).__module__ == "swr.db.postgresql.base"
    with django_db_blocker.unblock():
        yield connection
        connection.close()
        connection.close_pool()


def last_statement(cluster, pid: int) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as side:
        return side.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_the_pool_hands_out_a_healthy_connection_without_a_query(cluster, pooled):
    pid = backend_pid(pooled)
    with pooled.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")
    end_request(pooled)
    assert pooled.connection is None  # given back to the pool
    pooled.ensure_connection()
    assert last_statement(cluster, pid) == "SELECT 'the last statement'"  # Django's own check sends ''
    assert backend_pid(pooled) == pid


def test_the_pool_replaces_a_terminated_connection_before_a_request_uses_it(cluster, pooled):
    pid = backend_pid(pooled)
    kept = pooled.connection
    end_request(pooled)
    with psycopg.connect(cluster.url(), autocommit=True) as side:
        side.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert select.select([kept.fileno()], [], [], 10)[0], "the server did not close the connection"
    assert backend_pid(pooled) != pid


def test_the_pool_replaces_its_connections_after_a_server_restart(cluster, pooled):
    pid = backend_pid(pooled)
    end_request(pooled)
    cluster.stop()
    cluster.start()
    assert backend_pid(pooled) != pid


def test_with_a_pool_while_the_server_is_down_a_query_fails_fast_and_the_service_recovers(cluster, pooled):
    """As without a pool, a query fails fast while the server is down. Once it is back, the pool opens its
    connections again at its next try (psycopg_pool waits longer between tries the longer the outage lasted):
    until then a request answers 503 (OperationalError), then it is served."""
    pid = backend_pid(pooled)
    end_request(pooled)
    cluster.stop()
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError):
            backend_pid(pooled)
        assert time.monotonic() - started < 5
        end_request(pooled)
    finally:
        cluster.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert backend_pid(pooled) != pid
            break
        except OperationalError:
            end_request(pooled)
            assert time.monotonic() < deadline, "the pool did not reconnect within 30 s"


def test_a_check_cut_short_gives_the_connection_back_to_the_pool(pooled, monkeypatch):
    """A timeout or a kill that lands during the check (a KeyboardInterrupt, gevent's Timeout at a close)
    leaves no connection taken from the pool of one: the next request gets it."""
    from swr.db.postgresql import base

    def interrupted(connection):
        raise KeyboardInterrupt  # a BaseException, as gevent's Timeout and GreenletExit are

    monkeypatch.setattr(base, "closed_by_server", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pooled.ensure_connection()
    assert pooled.connection is None
    monkeypatch.undo()
    started = time.monotonic()
    backend_pid(pooled)
    assert time.monotonic() - started < 2  # not the pool's timeout (3 s) waiting for a lost connection
