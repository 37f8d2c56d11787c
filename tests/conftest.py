import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from swr import services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, Tenant, User

from .helpers import OPERATOR


@pytest.fixture
def make_tenant(db):
    def make(name="acme"):
        return Tenant.objects.create(name=name)

    return make


@pytest.fixture
def make_user(db):
    def make(username, tenant, *, is_tenant_admin=False):
        return User.objects.create_user(username=username, tenant=tenant, is_tenant_admin=is_tenant_admin)

    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("acme")


@pytest.fixture
def other_tenant(make_tenant):
    return make_tenant("globex")


@pytest.fixture
def owner(make_user, tenant):
    return make_user("alice", tenant)


@pytest.fixture
def namespace(owner, tenant):
    """Organization 'group' of tenant acme, created by alice (who therefore has manage on it)."""
    return services.namespace_create(name="group", tenant=tenant, creator=owner, actor=OPERATOR)


@pytest.fixture
def grant():
    def make(user, namespace, level: PermissionLevel):
        return NamespacePermission.objects.create(user=user, namespace=namespace, level=level)

    return make


@pytest.fixture
def client_for(db):
    """An APIClient that authenticates as ``user`` with a fresh X-Auth-Token."""

    def make(user):
        client = APIClient()
        if user is not None:
            _, raw = services.token_issue(user=user, actor=OPERATOR)
            client.credentials(HTTP_X_AUTH_TOKEN=raw)
        return client

    return make


@pytest.fixture
def api(client_for, owner):
    """Client of alice, manager of organization 'group'."""
    return client_for(owner)


ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn, configured as in production, serving the test database."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "DATABASE_URL": _database_url(),
        "DJANGO_CONN_MAX_AGE": "0",
    }
    # The production configuration (gunicorn.conf.py), on a free port with four workers.
    env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "4", "GUNICORN_LOG_LEVEL": "warning"})
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "registry.wsgi:application"]
    # The server's log goes to a file: a pipe nobody reads would fill up and stall the server.
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("gunicorn did not start within 30 s")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def create_fails(monkeypatch):
    """Make the repository-create service raise ``exception``, as a bug or a lost database would."""
    from swr import services

    def make(exception: Exception):
        def fail(**kwargs):
            raise exception

        monkeypatch.setattr(services, "repository_create", fail)

    return make
