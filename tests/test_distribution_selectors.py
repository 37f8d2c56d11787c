"""The registry's lookups by name (swr/distribution/selectors.py): hand-written SQL that must find the rows the
ORM found, with Django's types on both engines, in one query each, the related rows carrying what callers and
error messages read; and a guard that fails when a model they read gains behaviour the ORM would apply and a
cursor would not (docs/architecture.md, "Hand-written SQL")."""

import datetime
import threading
import time
import uuid

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from swr import services
from swr.distribution import digests, selectors
from swr.distribution import services as registry_services
from swr.distribution.errors import NameInvalid, NameUnknown
from swr.models import Blob, Namespace, Repository, RepositoryBlob, Upload

from .helpers import OPERATOR

READ_BY_HAND = (Namespace, Repository, Upload, RepositoryBlob, Blob)


@pytest.fixture
def repository(namespace, owner):
    return services.repository_create(namespace=namespace, name="app", is_public=True, creator=owner, actor=OPERATOR)


@pytest.fixture
def other(namespace, owner):
    return services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)


def one_query(call):
    with CaptureQueriesContext(connection) as captured:
        result = call()
    assert len(captured) == 1, [query["sql"] for query in captured.captured_queries]
    return result


def test_repository_loads_the_row_and_its_namespace_in_one_query(repository, namespace, tenant):
    stored = Repository.objects.get(pk=repository.pk)
    found = one_query(lambda: selectors.repository("group/app"))
    with CaptureQueriesContext(connection) as captured:
        assert found == repository
        assert (found.name, found.is_public, found.category, found.size) == ("app", True, repository.category, 0)
        assert (found.created_at, found.updated_at, found.creator_id) == (
            stored.created_at,
            stored.updated_at,
            stored.creator_id,
        )
        assert found.namespace == namespace
        assert (found.namespace.name, found.namespace.tenant_id) == ("group", tenant.pk)
    assert len(captured) == 0
    assert isinstance(found.is_public, bool)
    assert isinstance(found.created_at, datetime.datetime)
    assert found.created_at.tzinfo is not None
    assert found.namespace.tenant == tenant  # the rest of the namespace loads when read


@pytest.mark.parametrize("name", ["group/nothing", "nobody/app", "group/ap", "groupapp/x"])
def test_repository_of_an_unknown_name_is_none(name, repository):
    assert one_query(lambda: selectors.repository(name)) is None


@pytest.mark.parametrize("name", ["group", "Group/app", "group/App", "manage/app", "group/app\x00"])
def test_a_name_that_breaks_the_rules_is_refused_before_any_query(name, repository):
    with CaptureQueriesContext(connection) as captured, pytest.raises(NameInvalid):
        selectors.repository(name)
    assert len(captured) == 0


def test_upload_loads_the_session_and_its_repository_in_one_query(repository):
    session = Upload.objects.create(repository=repository, size=7, parts=1, sha256="sha256:" + "a" * 64)
    found = one_query(lambda: selectors.upload("group/app", str(session.id)))
    with CaptureQueriesContext(connection) as captured:
        assert found == session
        assert (found.size, found.parts, found.sha256, found.digest) == (7, 1, "sha256:" + "a" * 64, "")
        assert found.repository == repository
        assert found.repository.name == "app"
        assert found.repository.namespace == repository.namespace
        assert str(found.repository) == "group/app"  # what error messages and audit records name
    assert len(captured) == 0
    assert isinstance(found.id, uuid.UUID)
    assert found.id == session.id
    assert found.updated_at == session.updated_at
    assert found.updated_at.tzinfo is not None
    assert found.repository.is_public is True  # the rest of the repository loads when read


def test_upload_of_another_repository_or_unknown_is_none(repository, other):
    session = Upload.objects.create(repository=repository)
    assert one_query(lambda: selectors.upload("group/web", str(session.id))) is None
    assert one_query(lambda: selectors.upload("group/app", str(uuid.uuid4()))) is None
    assert one_query(lambda: selectors.upload("nobody/app", str(session.id))) is None
    assert one_query(lambda: selectors.upload("group/app", session.id.hex)) == session  # a UUID in any spelling


@pytest.mark.parametrize("upload_id", ["x", "", "1" * 33, "../etc"])
def test_upload_id_that_is_no_uuid_is_none_without_a_query(upload_id, repository):
    with CaptureQueriesContext(connection) as captured:
        assert selectors.upload("group/app", upload_id) is None
    assert len(captured) == 0


def test_linked_blob_size_answers_for_the_repository_that_holds_the_blob(repository, other):
    blob = Blob.objects.create(digest="sha256:" + "b" * 64, size=2**40 + 3)
    RepositoryBlob.objects.create(repository=repository, blob=blob)
    assert one_query(lambda: selectors.linked_blob_size("group/app", blob.digest)) == 2**40 + 3
    assert one_query(lambda: selectors.linked_blob_size("group/web", blob.digest)) is None
    assert one_query(lambda: selectors.linked_blob_size("group/app", "sha256:" + "c" * 64)) is None
    assert one_query(lambda: selectors.linked_blob_size("nobody/app", blob.digest)) is None


def test_the_lookups_leave_no_columns_of_their_own_on_the_models(repository):
    session = Upload.objects.create(repository=repository)
    found = selectors.repository("group/app")
    loaded = selectors.upload("group/app", str(session.id))
    for instance in (found, found.namespace, loaded, loaded.repository, loaded.repository.namespace):
        extra = {name for name in vars(instance) if name != "_state"} - {
            f.attname for f in type(instance)._meta.concrete_fields
        }
        assert not extra, f"{type(instance).__name__} carries {extra}"


@pytest.mark.parametrize("stored", [True, False], ids=["bytes stored", "bytes found"])
def test_a_finished_upload_whose_repository_and_organization_went_meanwhile_is_name_unknown(
    transactional_db, repository, namespace, stored
):
    """Both deleted while the PUT's bytes were committed (after the digest's mark, before the link): the link's
    foreign key fails the first try at COMMIT (committed transactions here: Django's foreign keys are deferred),
    the second holds the repository first; the NAME_UNKNOWN message names the repository from what the lookup
    loaded (a lazy load of the organization would find nothing: a 500). Nothing is left of the blob's row or
    its link."""
    session = Upload.objects.create(repository=repository)
    found = selectors.upload("group/app", str(session.id))
    services.repository_delete(repository=Repository.objects.get(pk=repository.pk), actor=OPERATOR)
    services.namespace_delete(namespace=Namespace.objects.get(pk=namespace.pk), actor=OPERATOR)
    with pytest.raises(NameUnknown, match="group/app"):
        registry_services._link(found.repository, digests.of(b""), 0, upload=found, stored=stored)
    assert not Blob.objects.exists()
    assert not RepositoryBlob.objects.exists()


def test_a_finished_upload_racing_its_repositorys_delete_is_name_unknown(transactional_db, repository, monkeypatch):
    """The repository's delete holds the repository's row, then removes it with its sessions. The PUT's link,
    meanwhile, must wait for the repository's row before it ends the session: when PostgreSQL ran the
    one-statement link's DELETE of the session first, the two deadlocked (a 500). NAME_UNKNOWN, nothing left."""
    session = Upload.objects.create(repository=repository)
    found = selectors.upload("group/app", str(session.id))
    real_delete, holding = services._delete, threading.Event()

    def slow_delete(model, pk):  # the repository's row is locked by now
        holding.set()
        time.sleep(0.5)
        return real_delete(model, pk)

    monkeypatch.setattr(services, "_delete", slow_delete)

    def delete():
        try:
            services.repository_delete(repository=Repository.objects.get(pk=repository.pk), actor=OPERATOR)
        finally:
            connection.close()

    thread = threading.Thread(target=delete)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(NameUnknown, match="group/app"):
            registry_services._link(found.repository, digests.of(b"x"), 1, upload=found, stored=True)
    finally:
        thread.join(20)
    assert not Repository.objects.filter(pk=repository.pk).exists()
    assert not Blob.objects.exists()
    assert not RepositoryBlob.objects.exists()


@pytest.mark.parametrize("model", READ_BY_HAND, ids=lambda model: model.__name__)
def test_models_read_by_hand_written_sql_have_no_hidden_behaviour(model):
    """A manager that filters rows, or a field that converts its column's value, would be bypassed."""
    manager = type(model._default_manager)
    assert manager.get_queryset is models.Manager.get_queryset, f"{model.__name__}'s manager filters its rows"
    for field in model._meta.concrete_fields:
        assert not hasattr(field, "from_db_value"), f"{model.__name__}.{field.name} converts what it reads"
        assert not isinstance(field, models.GeneratedField), f"{model.__name__}.{field.name} is generated"
