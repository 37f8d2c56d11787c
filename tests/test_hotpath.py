"""The hand-written statements of the request paths load and store exactly what the ORM would."""

from datetime import datetime

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from swr import hotpath, services
from swr.choices import PermissionLevel
from swr.models import AccessKey, ApiToken, AuditRecord, Namespace, Tenant, User


def _columns(obj) -> dict:
    """Every concrete column of ``obj`` as loaded."""
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def _assert_same(loaded, expected):
    assert type(loaded) is type(expected)
    assert _columns(loaded) == _columns(expected)
    assert loaded._state.adding is False
    assert loaded._state.db == "default"
    for value in _columns(loaded).values():
        if isinstance(value, datetime):
            assert value.tzinfo is not None, "datetimes come back aware, as the ORM gives them"


def test_api_token_loads_token_user_and_tenant_in_one_query(owner, tenant):
    token, raw = services.token_issue(user=owner)
    with CaptureQueriesContext(connection) as queries:
        loaded = hotpath.api_token(ApiToken.hash_key(raw))
        user, user_tenant = loaded.user, loaded.user.tenant
    assert len(queries) == 1
    _assert_same(loaded, ApiToken.objects.get(pk=token.pk))
    _assert_same(user, User.objects.get(pk=owner.pk))
    _assert_same(user_tenant, Tenant.objects.get(pk=tenant.pk))
    assert isinstance(user.is_active, bool)
    assert user.is_active is True


def test_api_token_of_a_user_without_tenant_has_no_tenant(db):
    staff = User.objects.create_user(username="staff")
    _, raw = services.token_issue(user=staff)
    with CaptureQueriesContext(connection) as queries:
        loaded = hotpath.api_token(ApiToken.hash_key(raw))
        assert loaded.user.tenant is None
    assert len(queries) == 1


def test_unknown_credentials_are_none(db):
    assert hotpath.api_token(ApiToken.hash_key("swr_unknown")) is None
    assert hotpath.access_key("NOSUCHKEY") is None


def test_access_key_loads_key_user_and_tenant_in_one_query(owner, tenant):
    key, _ = services.access_key_issue(user=owner, description="ci")
    with CaptureQueriesContext(connection) as queries:
        loaded = hotpath.access_key(key.access_key)
        assert loaded.user.tenant.pk == tenant.pk
    assert len(queries) == 1
    _assert_same(loaded, AccessKey.objects.get(pk=key.pk))
    _assert_same(loaded.user, User.objects.get(pk=owner.pk))


@pytest.mark.parametrize("level", [None, PermissionLevel.READ, PermissionLevel.MANAGE])
def test_namespace_with_level_is_the_orm_annotation(level, namespace, make_user, tenant, grant):
    reader = make_user("bob", tenant)
    if level is not None:
        grant(reader, namespace, level)
    with CaptureQueriesContext(connection) as queries:
        loaded = hotpath.namespace_with_level("group", reader)
        tenant_name, creator_name = loaded.tenant.name, loaded.creator.username
    assert len(queries) == 1
    assert (tenant_name, creator_name) == ("acme", "alice")
    _assert_same(loaded, Namespace.objects.get(name="group"))
    assert loaded.granted_level == level


@pytest.mark.parametrize("level", [None, PermissionLevel.EDIT])
def test_namespace_with_level_without_related_loads_the_namespace_alone(level, namespace, make_user, tenant, grant):
    reader = make_user("bob", tenant)
    if level is not None:
        grant(reader, namespace, level)
    with CaptureQueriesContext(connection) as queries:
        loaded = hotpath.namespace_with_level("group", reader, related=False)
    assert len(queries) == 1
    assert " JOIN " not in queries[0]["sql"]
    _assert_same(loaded, Namespace.objects.get(name="group"))
    assert loaded.granted_level == level
    assert not Namespace.tenant.is_cached(loaded)
    assert not Namespace.creator.is_cached(loaded)


@pytest.mark.parametrize("level", [None, PermissionLevel.READ, PermissionLevel.MANAGE])
def test_a_credential_loads_the_namespace_of_the_url_in_the_same_query(level, namespace, make_user, tenant, grant):
    reader = make_user("bob", tenant)
    if level is not None:
        grant(reader, namespace, level)
    _, raw = services.token_issue(user=reader)
    key, _ = services.access_key_issue(user=reader)
    for load in (lambda name: hotpath.api_token(ApiToken.hash_key(raw), name),
                 lambda name: hotpath.access_key(key.access_key, name)):  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            credential = load("group")
        assert len(queries) == 1
        assert credential.user == reader
        assert credential.user.tenant == tenant
        expected = hotpath.namespace_with_level("group", reader, related=False)
        _assert_same(credential.loaded_namespace, expected)
        assert credential.loaded_namespace.granted_level == expected.granted_level == level
        assert load("nowhere").loaded_namespace is None
        assert not hasattr(load(None), "loaded_namespace")


def test_namespace_without_creator_and_unknown_namespace(tenant, owner):
    services.namespace_create(name="orphan", tenant=tenant)
    loaded = hotpath.namespace_with_level("orphan", owner)
    assert loaded.creator is None
    assert loaded.granted_level is None
    assert hotpath.namespace_with_level("nowhere", owner) is None


def test_insert_stores_what_save_would(owner, tenant):
    record = hotpath.insert(
        AuditRecord(source="api", action="repository.create", object="group/app", outcome="success", user=owner)
    )
    stored = AuditRecord.objects.get(pk=record.pk)
    _assert_same(record, stored)
    assert stored.created_at is not None
    assert stored.detail == ""
    assert stored.tenant_id is None
    assert model_to_dict(stored)["user"] == owner.pk


def test_statements_of_the_request_paths_are_prepared_once_per_connection(owner, tenant):
    """On PostgreSQL a lookup that a connection runs again and again is parsed and planned once: after a few
    runs it is a prepared statement of that connection's session. (SQLite's driver keeps its own statement
    cache; there is nothing to ask of it.)"""
    _, raw = services.token_issue(user=owner)
    key = ApiToken.hash_key(raw)
    for _ in range(6):
        assert hotpath.api_token(key) is not None
    if connection.vendor != "postgresql":
        assert "prepare_threshold" not in connection.settings_dict["OPTIONS"]
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['%"swr_apitoken"%'])
        prepared = [row[0] for row in cursor.fetchall()]
    assert len(prepared) == 1, prepared


def test_the_prepare_threshold_can_be_turned_off_for_a_pooling_proxy(monkeypatch):
    from registry import settings

    monkeypatch.setenv("DATABASE_URL", "postgres://app@db:5432/swr")
    monkeypatch.setenv("DJANGO_DB_PREPARE_THRESHOLD", "")
    assert settings._database()["OPTIONS"]["prepare_threshold"] is None
    monkeypatch.setenv("DJANGO_DB_PREPARE_THRESHOLD", "1")
    assert settings._database()["OPTIONS"]["prepare_threshold"] == 1
    monkeypatch.delenv("DJANGO_DB_PREPARE_THRESHOLD")
    assert settings._database()["OPTIONS"]["prepare_threshold"] == 5
