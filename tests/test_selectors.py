"""The reads of the request paths (swr/selectors.py): one query each, loading what the policy and the answer need."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from swr import selectors, services
from swr.choices import PermissionLevel
from swr.models import AccessKey, ApiToken, Namespace, RepositoryPermission, User

from .helpers import OPERATOR


def test_api_token_loads_token_user_and_tenant_in_one_query(owner, tenant):
    token, raw = services.token_issue(user=owner, actor=OPERATOR)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.api_token(ApiToken.hash_key(raw))
        user, user_tenant = loaded.user, loaded.user.tenant
    assert len(queries) == 1
    assert (loaded.pk, user, user_tenant) == (token.pk, owner, tenant)
    assert user.is_active is True


def test_api_token_of_a_user_without_tenant_has_no_tenant(db):
    staff = User.objects.create_user(username="staff")
    _, raw = services.token_issue(user=staff, actor=OPERATOR)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.api_token(ApiToken.hash_key(raw))
        assert loaded.user.tenant is None
    assert len(queries) == 1


def test_unknown_credentials_are_none(db):
    assert selectors.api_token(ApiToken.hash_key("swr_unknown")) is None
    assert selectors.access_key("NOSUCHKEY") is None


def test_access_key_loads_key_user_and_tenant_in_one_query(owner, tenant):
    key, _ = services.access_key_issue(user=owner, description="ci", actor=OPERATOR)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.access_key(key.access_key)
        assert loaded.user.tenant == tenant
    assert len(queries) == 1
    assert (loaded, loaded.user) == (AccessKey.objects.get(pk=key.pk), owner)


@pytest.mark.parametrize("level", [None, PermissionLevel.READ, PermissionLevel.MANAGE])
def test_namespace_comes_with_the_callers_own_level(level, namespace, make_user, tenant, grant):
    reader = make_user("bob", tenant)
    if level is not None:
        grant(reader, namespace, level)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.namespace("group", reader)
        tenant_name, creator_name = loaded.tenant.name, loaded.creator.username
    assert len(queries) == 1
    assert (tenant_name, creator_name) == ("acme", "alice")
    assert loaded == Namespace.objects.get(name="group")
    assert loaded.granted_level == level


@pytest.mark.parametrize("level", [None, PermissionLevel.EDIT])
def test_namespace_without_related_loads_the_namespace_alone(level, namespace, make_user, tenant, grant):
    reader = make_user("bob", tenant)
    if level is not None:
        grant(reader, namespace, level)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.namespace("group", reader, related=False)
    assert len(queries) == 1
    assert " JOIN " not in queries[0]["sql"]
    assert loaded.granted_level == level
    assert not Namespace.tenant.is_cached(loaded)
    assert not Namespace.creator.is_cached(loaded)


def test_namespace_without_creator_and_unknown_namespace(tenant, owner):
    services.namespace_create(name="orphan", tenant=tenant, actor=OPERATOR)
    loaded = selectors.namespace("orphan", owner)
    assert loaded.creator is None
    assert loaded.granted_level is None
    assert selectors.namespace("nowhere", owner) is None


@pytest.mark.parametrize("name", ["Group", "a" * 1000, "bad\x00name", "-x", ""])
def test_a_name_that_breaks_the_rule_is_none_without_a_query(name, namespace, owner):
    with CaptureQueriesContext(connection) as queries:
        assert selectors.namespace(name, owner) is None
        assert selectors.repository(namespace, name, owner) is None
    assert len(queries) == 0


@pytest.mark.parametrize("level", [None, PermissionLevel.READ, PermissionLevel.MANAGE])
def test_repository_comes_with_its_creator_and_the_callers_own_level(level, namespace, owner, make_user, tenant):
    reader = make_user("bob", tenant)
    web = services.repository_create(
        namespace=namespace, name="nginx/web", is_public=False, creator=owner, actor=OPERATOR
    )
    if level is not None:
        RepositoryPermission.objects.create(repository=web, user=reader, level=level)
    with CaptureQueriesContext(connection) as queries:
        loaded = selectors.repository(namespace, "nginx/web", reader)
        assert (loaded.creator, loaded.namespace) == (owner, namespace)
    assert len(queries) == 1
    assert loaded.granted_level == level
    assert selectors.repository(namespace, "nginx/other", reader) is None


def test_statements_of_the_request_paths_are_prepared_once_per_connection(owner, tenant):
    """On PostgreSQL a lookup that a connection runs again and again is parsed and planned once: after a few
    runs it is a prepared statement of that connection's session. (SQLite's driver keeps its own statement
    cache; there is nothing to ask of it.)"""
    _, raw = services.token_issue(user=owner, actor=OPERATOR)
    key = ApiToken.hash_key(raw)
    for _ in range(6):
        assert selectors.api_token(key) is not None
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
