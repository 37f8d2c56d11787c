"""The database goes away and comes back, under load: a throwaway PostgreSQL cluster that the test stops and starts.

While the database is down, requests answer 503 with the error body quickly
(no hang past the connect timeout); when it returns, the service recovers by
itself; and every create that was answered 201 is in the database afterwards.
"""

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.live

BINDIR = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster of the test's own, in a temporary directory, on a spare port."""

    def __init__(self):
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="swr-fault-pg-"))
        self.data = self.dir / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool, *args):
        subprocess.run([*self.as_postgres, f"{BINDIR}/{tool}", *args], check=True, capture_output=True, timeout=120)

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(url, body=None, token=None, timeout=15):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, text, time.monotonic() - started


@pytest.fixture
def stack():
    """A cluster, a migrated database with a demo user, and gunicorn serving it with persistent connections."""
    if BINDIR is None:
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    cluster = Cluster()
    process = None
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
        port = _free_port()
        env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "GUNICORN_LOG_LEVEL": "warning"})
        log = (cluster.dir / "gunicorn.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "registry.wsgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if call(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield cluster, base, token
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        cluster.destroy()


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
    time.sleep(1.5)
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


@pytest.fixture
def cluster():
    """A started throwaway cluster, for tests that talk to it without a server in between."""
    if BINDIR is None:
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _django_connection(cluster, monkeypatch):
    """A connection of the project's PostgreSQL backend to the cluster, configured as the settings configure one."""
    from django.db.utils import ConnectionHandler

    from registry import settings

    monkeypatch.setenv("DATABASE_URL", cluster.url())
    return ConnectionHandler({"default": settings._database()})["default"]


def _last_query(cluster, pid: int) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as side:
        return side.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def _wait_readable(connection, seconds=10):
    import select

    assert select.select([connection.connection.fileno()], [], [], seconds)[0], "the server said nothing"


def test_health_check_asks_the_server_only_when_the_connection_heard_from_it(cluster, django_db_blocker, monkeypatch):
    """Before each request's first query Django checks a reused connection. A quiet, healthy connection is
    not asked anything (no SELECT 1 round trip); one whose backend was terminated, or whose server restarted,
    is replaced, so the request is served instead of failing."""
    with django_db_blocker.unblock():  # a connection of its own, to its own cluster
        _check_and_replace(cluster, _django_connection(cluster, monkeypatch))


def _check_and_replace(cluster, db):
    assert type(db).__module__ == "registry.postgresql.base"
    try:
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
        _wait_readable(db)
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
    finally:
        db.close()
