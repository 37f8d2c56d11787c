import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from registry.settings import blob_settings
from swr import services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, Tenant, User

from .helpers import OPERATOR, PASSWORD, perms, start_gunicorn, view_permissions
from .seaweed import seaweedfs as start_seaweedfs


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
def bob(make_user, tenant):
    """bob, another user of acme."""
    return make_user("bob", tenant)


@pytest.fixture
def alice(owner):
    """The owner, alice, with a password to log in with: helpers.PASSWORD."""
    owner.set_password(PASSWORD)
    owner.save()
    return owner


@pytest.fixture
def carol(make_user, tenant):
    """carol of acme, a superuser who logs in to the admin with helpers.PASSWORD."""
    user = make_user("carol", tenant)
    user.is_staff = user.is_superuser = True
    user.set_password(PASSWORD)
    user.save()
    return user


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


@pytest.fixture
def token(owner):
    """A fresh X-Auth-Token of alice, for requests over real HTTP."""
    return services.token_issue(user=owner, actor=OPERATOR)[1]


@pytest.fixture
def key_pair(owner):
    """(AK, SK) of a fresh access key of alice."""
    key, secret_key = services.access_key_issue(user=owner, actor=OPERATOR)
    return key.access_key, secret_key


@pytest.fixture
def staff_client(db):
    """A staff account holding the given permissions, logged in: ``client, user = staff_client("swr.change_user")``;
    with ``view_all``, it holds the view permission on every model of the admin site too."""

    def make(*permissions, view_all=False, username="staff"):
        user = User.objects.create_user(username, is_staff=True)
        user.user_permissions.set([*(view_permissions() if view_all else []), *perms(*permissions)])
        client = Client()
        client.force_login(user)
        return client, user

    return make


@pytest.fixture
def view_only_staff(staff_client):
    """(client, user) of "viewer", a logged-in staff account with the view permission on every model of the admin
    site and nothing else."""
    return staff_client(view_all=True, username="viewer")


@pytest.fixture
def root(db):
    """A superuser, root, whose password is root-password."""
    return User.objects.create_superuser("root", password="root-password")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn, configured as in production (gunicorn.conf.py) with four workers, serving the test database."""
    with start_gunicorn(tmp_path_factory.mktemp("gunicorn") / "server.log", workers=4) as base:
        yield base


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """SeaweedFS (`weed mini`, tests/seaweed.py), one for the session: a real S3-compatible object store with a
    bucket of its own; a tests/seaweed.SeaweedFS (its env() points the registry at it; client(), keys())."""
    with start_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


class BlobStorage:
    """Where blob bytes go, for the tests of one module: ``kind`` (filesystem or s3), ``env`` (the environment a
    server started now gets; tests/liveserver.py passes it on), ``store`` (tests/seaweed.SeaweedFS, or None)."""

    def __init__(self, kind: str, env: dict, store=None):
        self.kind, self.env, self.store = kind, env, store

    def __repr__(self):
        return self.kind


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def blob_storage(request):
    """Run a module's tests on each blob storage: the folder, then SeaweedFS (the `seaweedfs` fixture).

    Switches both this process's settings (registry/settings.py ``blob_settings``: STORAGES["blobs"] and the
    SWR_BLOB_* settings) and the environment, so that a server started within the module (the
    ``server_on_blob_storage`` fixture, or any tests/liveserver.py server) stores where the test looks. On the
    folder, the server shares the tests' folder (settings_test.py's test-blobs)."""
    store = None
    if request.param == "s3":
        store = request.getfixturevalue("seaweedfs")
        env = store.env()
    else:
        env = {"SWR_BLOB_STORAGE": "filesystem", "SWR_BLOB_ROOT": str(settings.VAR_DIR / "test-blobs")}
    env = {**env, "SWR_BLOB_REDIRECT": "", "SWR_BLOB_REDIRECT_SECONDS": "", "SWR_BLOB_REDIRECT_ENDPOINT_URL": ""}
    derived = blob_settings(env)
    blobs = derived.pop("blobs")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with override_settings(STORAGES={**settings.STORAGES, "blobs": blobs}, **derived):
            yield BlobStorage(request.param, env, store)


@pytest.fixture(scope="module")
def server_on_blob_storage(blob_storage, django_db_setup, django_db_blocker, tmp_path_factory):
    """The ``server`` fixture's gunicorn, on each storage of ``blob_storage``. A module runs its live tests on both
    with ``server = server_on_blob_storage`` (a fixture of its own that returns it)."""
    log = tmp_path_factory.mktemp(f"gunicorn-{blob_storage.kind}") / "server.log"
    with start_gunicorn(log, workers=4, env=blob_storage.env) as base:
        yield base


@pytest.fixture
def create_fails(monkeypatch):
    """Make the repository-create service raise ``exception``, as a bug or a lost database would."""
    from swr import services

    def make(exception: Exception):
        def fail(**kwargs):
            raise exception

        monkeypatch.setattr(services, "repository_create", fail)

    return make
