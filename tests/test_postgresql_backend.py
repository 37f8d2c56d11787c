"""The project's PostgreSQL backend (registry/postgresql): Django's, with a cheaper health check and timestamp loader.

The tests talk to a throwaway cluster of their own, whatever database the rest of the suite runs on.
"""

import select
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

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
    """A connection of the project's backend to the cluster, configured as the settings configure one."""
    from django.db.utils import ConnectionHandler

    from registry import settings

    monkeypatch.setenv("DATABASE_URL", cluster.url())
    connection = ConnectionHandler({"default": settings._database()})["default"]
    assert type(connection).__module__ == "registry.postgresql.base"
    with django_db_blocker.unblock():  # a connection of its own, to its own cluster
        yield connection
        connection.close()


def _last_query(cluster, pid: int) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as side:
        return side.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def test_health_check_asks_the_server_only_when_the_connection_heard_from_it(cluster, db):
    """Before each request's first query Django checks a reused connection. A quiet, healthy connection is
    not asked anything (no SELECT 1 round trip); one whose backend was terminated, or whose server restarted,
    is replaced, so the request is served instead of failing."""
    with db.cursor() as cursor:
        cursor.execute("SELECT 'the last query'")
    assert db.health_check_enabled
    pid = db.connection.info.backend_pid

    db.health_check_done = False  # a new request
    db.close_if_health_check_failed()
    assert db.connection is not None
    assert db.connection.info.backend_pid == pid
    assert _last_query(cluster, pid) == "SELECT 'the last query'"  # nothing was sent

    with psycopg.connect(cluster.url(), autocommit=True) as side:
        side.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert select.select([db.connection.fileno()], [], [], 10)[0], "the server said nothing"
    db.health_check_done = False
    with db.cursor() as cursor:  # the check runs before the query and replaces the connection
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid

    pid = db.connection.info.backend_pid
    cluster.stop()
    cluster.start()
    db.health_check_done = False
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


STAMPS = [
    "2026-11-27 08:39:42.262813+00",
    "1999-01-08 04:05:06-08",
    "2000-02-29 23:59:59.999999+05:30",
    "0001-01-02 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2026-03-29 01:30:00+01",
]


def test_timestamps_load_as_djangos_loader_loads_them(db):
    """Same instants, same time zone object as Django's own loader gives (in the session time zone Django
    sets: UTC)."""
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    with db.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [STAMPS])
        loaded = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT unnest(%s::timestamptz[])::text", [STAMPS])
        texts = [row[0] for row in cursor.fetchall()]

        class DjangosLoader(BaseTzLoader):
            timezone = db.timezone

        oid = psycopg.adapters.types["timestamptz"].oid
        expected = [DjangosLoader(oid, cursor.cursor).load(text.encode()) for text in texts]
    assert db.timezone is UTC
    assert loaded == expected
    assert [value.tzinfo for value in loaded] == [value.tzinfo for value in expected]
    assert all(value.tzinfo is db.timezone for value in loaded)
    assert loaded[0] == datetime(2026, 11, 27, 8, 39, 42, 262813, tzinfo=UTC)
    assert loaded[1] == datetime(1999, 1, 8, 12, 5, 6, tzinfo=UTC)
    assert loaded[2] == datetime(2000, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def test_the_timestamp_loader_parses_with_psycopgs_own_loader(db):
    """The point of the change: parsing is psycopg's registered loader (compiled code with psycopg-binary),
    not the pure-Python class Django subclasses."""
    db.ensure_connection()
    oid = psycopg.adapters.types["timestamptz"].oid
    loader = db.connection.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
    assert loader.__module__ == "registry.postgresql.base"
    parser = type(loader(oid, db.connection)._parse.__self__)
    assert parser is psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT)
    if psycopg.pq.__impl__ == "binary":
        assert parser.__module__ == "psycopg_binary._psycopg"
