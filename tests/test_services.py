"""The write services when what they write into or remove was deleted meanwhile (issue 11, must-haves 2 and 3).

A caller (the API's view, the admin) finds a namespace or repository and then calls a service; by
then another request may have deleted it. Called with such a stale object, every service answers
the 404 of what is gone (spec section 1: SVCSTG.SWR.4040058 for an organization, 4040010 for a
repository), writes nothing, and gives a quota place back only for a row it removed itself, so
the tenant's counters stay equal to its rows. The transactions really commit here
(``transaction=True``): PostgreSQL checks Django's deferred foreign keys only at commit.
The same races over HTTP, with requests released together, are in test_races.py.
"""

import threading
from contextlib import nullcontext

import pytest
from django.db import OperationalError, connection, connections, transaction

from swr import services
from swr.api.errors import exception_handler, to_swr_error
from swr.errors import NamespaceNotFound, RepositoryNotFound
from swr.models import AuditRecord, Namespace, NamespacePermission, Repository, RepositoryPermission, Tenant

from .helpers import OPERATOR

pytestmark = pytest.mark.django_db(transaction=True)


def assert_usage_is_the_rows(tenant):
    tenant.refresh_from_db()
    namespaces = Namespace.objects.filter(tenant=tenant).count()
    repositories = Repository.objects.filter(namespace__tenant=tenant).count()
    assert (tenant.namespace_count, tenant.repository_count) == (namespaces, repositories)


@pytest.fixture
def keep(namespace, owner):
    """Organization 'group' holds repository 'keep': a counter lowered twice would not hide at zero."""
    services.repository_create(namespace=namespace, name="keep", is_public=False, creator=owner, actor=OPERATOR)
    return namespace


def stale(obj):
    """Another copy of ``obj``, as a second request holds it (its organization loaded too)."""
    copy = type(obj).objects.get(pk=obj.pk)
    if isinstance(obj, Repository):
        copy.namespace = Namespace.objects.get(pk=obj.namespace_id)
    return copy


@pytest.mark.parametrize("in_transaction", [False, True], ids=["api", "in-callers-transaction"])
def test_repository_create_in_an_organization_deleted_meanwhile_is_404(keep, owner, tenant, in_transaction):
    """The create whose organization vanished answers 404 SVCSTG.SWR.4040058, takes no quota place,
    stores no audit record; inside a caller's transaction (the admin's) that transaction goes on."""
    gone = services.namespace_create(name="gone", tenant=tenant, creator=owner, actor=OPERATOR)
    services.namespace_delete(namespace=stale(gone), actor=OPERATOR)
    with transaction.atomic() if in_transaction else nullcontext():
        with pytest.raises(NamespaceNotFound) as raised:
            services.repository_create(namespace=gone, name="app", is_public=False, creator=owner, actor=OPERATOR)
        # The caller's transaction is still usable.
        services.repository_create(namespace=keep, name="after", is_public=False, creator=owner, actor=OPERATOR)
    assert raised.value.error_code == "SVCSTG.SWR.4040058"
    assert "'gone'" in raised.value.message
    assert not Repository.objects.filter(name="app").exists()
    assert not AuditRecord.objects.filter(object="gone/app").exists()
    assert_usage_is_the_rows(tenant)


def test_namespace_deleted_twice_gives_its_place_back_once(keep, owner, tenant):
    """Two requests delete one organization: the second answers 404 and gives nothing back."""
    gone = services.namespace_create(name="gone", tenant=tenant, creator=owner, actor=OPERATOR)
    first, second = stale(gone), stale(gone)
    services.namespace_delete(namespace=first, actor=OPERATOR)
    with pytest.raises(NamespaceNotFound):
        services.namespace_delete(namespace=second, actor=OPERATOR)
    assert_usage_is_the_rows(tenant)
    assert tenant.namespace_count == 1


def test_repository_deleted_twice_gives_its_place_back_once(keep, owner, tenant):
    """Two requests delete one repository: the second answers 404 SVCSTG.SWR.4040010 and gives nothing back."""
    repository = services.repository_create(namespace=keep, name="gone", is_public=False, creator=owner, actor=OPERATOR)
    first, second = stale(repository), stale(repository)
    services.repository_delete(repository=first, actor=OPERATOR)
    with pytest.raises(RepositoryNotFound) as raised:
        services.repository_delete(repository=second, actor=OPERATOR)
    assert raised.value.error_code == "SVCSTG.SWR.4040010"
    assert_usage_is_the_rows(tenant)
    assert tenant.repository_count == 1


def test_repository_update_of_a_repository_deleted_meanwhile_is_404(keep, owner, tenant):
    repository = services.repository_create(namespace=keep, name="gone", is_public=False, creator=owner, actor=OPERATOR)
    services.repository_delete(repository=stale(repository), actor=OPERATOR)
    with pytest.raises(RepositoryNotFound):
        services.repository_update(repository=repository, is_public=True, description="changed", actor=OPERATOR)
    assert not Repository.objects.filter(name="gone").exists()


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
@pytest.mark.parametrize("target", ["namespace", "repository"])
def test_grants_on_an_object_deleted_meanwhile_are_404(keep, owner, tenant, bob, target, operation):
    """Grants into a vanished organization or repository: 404 of that object, nothing written.

    (Before, a grant's foreign key failed at commit, outside the service's error handling: 500.)
    """
    if target == "namespace":
        obj = services.namespace_create(name="gone", tenant=tenant, creator=owner, actor=OPERATOR)
    else:
        obj = services.repository_create(namespace=keep, name="gone", is_public=False, creator=owner, actor=OPERATOR)
    if operation != "create":
        services.grants_create(obj=obj, levels={bob: 1}, actor=OPERATOR)
    if target == "namespace":
        services.namespace_delete(namespace=stale(obj), actor=OPERATOR)
    else:
        services.repository_delete(repository=stale(obj), actor=OPERATOR)
    call = {
        "create": lambda: services.grants_create(obj=obj, levels={bob: 3}, actor=OPERATOR),
        "update": lambda: services.grants_update(obj=obj, levels={bob: 3}, actor=OPERATOR),
        "delete": lambda: services.grants_delete(obj=obj, users=[bob], actor=OPERATOR),
    }[operation]
    error = NamespaceNotFound if target == "namespace" else RepositoryNotFound
    with pytest.raises(error):
        call()
    assert not NamespacePermission.objects.filter(user=bob).exists()
    assert not RepositoryPermission.objects.filter(user=bob).exists()


def _deadlock(first: Tenant, second: Tenant) -> OperationalError:
    """Two transactions lock two tenants' rows in opposite orders; the error of the one PostgreSQL aborts."""
    errors, locked = [], threading.Barrier(2)

    def side(one, two):
        # Each thread has a connection of its own, as two workers of the server have.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE swr_tenant SET name = name WHERE id = %s", [one.pk])
                locked.wait(10)
                cursor.execute("UPDATE swr_tenant SET name = name WHERE id = %s", [two.pk])
        except OperationalError as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=side, args=pair) for pair in [(first, second), (second, first)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1, errors
    return errors[0]


def _serialization_failure(tenant: Tenant) -> OperationalError:
    """A REPEATABLE READ transaction updates a row that another transaction changed after its snapshot."""
    other = connections.create_connection("default")  # another worker's connection, in autocommit
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT name FROM swr_tenant WHERE id = %s", [tenant.pk])
            with other.cursor() as other_cursor:
                other_cursor.execute("UPDATE swr_tenant SET name = name WHERE id = %s", [tenant.pk])
            cursor.execute("UPDATE swr_tenant SET name = name WHERE id = %s", [tenant.pk])
    except OperationalError as exc:
        return exc
    finally:
        other.close()
    raise AssertionError("no serialization failure")


@pytest.mark.parametrize("collision", ["deadlock", "serialization failure"])
def test_colliding_transactions_are_not_an_unreachable_database(tenant, other_tenant, collision):
    """503 means the database is away. A deadlock or serialization failure (PostgreSQL, SQLSTATE
    class 40) means it answered: since the services lock in one order, such an error is a bug,
    answered 500 with the error body and logged, never 503 "database unreachable"."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: no deadlock to provoke")
    error = _deadlock(tenant, other_tenant) if collision == "deadlock" else _serialization_failure(tenant)
    assert error.__cause__.sqlstate == ("40P01" if collision == "deadlock" else "40001")
    assert to_swr_error(error) is None
    response = exception_handler(error, {})
    assert (response.status_code, response.data["error_code"]) == (500, "SVCSTG.SWR.5000046")
