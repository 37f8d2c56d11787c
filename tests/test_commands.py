"""python manage.py swr_token."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, Tenant, User

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command("swr_token", *args, stdout=out)
    return out.getvalue().splitlines()


def test_creates_tenant_and_user_and_prints_a_working_token():
    lines = run("--tenant", "acme", "--user", "alice")
    user = User.objects.get(username="alice")
    assert user.tenant == Tenant.objects.get(name="acme")
    assert not user.is_tenant_admin
    token = lines[-1]
    assert " " not in token
    assert len(token) > 40
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=token)
    response = client.post(
        "/v2/manage/namespaces", data=json.dumps({"namespace": "team"}), content_type="application/json"
    )
    assert response.status_code == 201


def test_reuses_existing_tenant_and_user_and_issues_a_new_token():
    first = run("--tenant", "acme", "--user", "alice")[-1]
    second = run("--tenant", "acme", "--user", "alice")[-1]
    assert first != second
    assert Tenant.objects.count() == 1
    assert User.objects.count() == 1
    assert User.objects.get().api_tokens.count() == 2


def test_tenant_admin_flag():
    run("--tenant", "acme", "--user", "root", "--tenant-admin")
    assert User.objects.get(username="root").is_tenant_admin


def test_user_of_another_tenant_is_refused():
    run("--tenant", "acme", "--user", "alice")
    with pytest.raises(CommandError, match="belongs to tenant acme"):
        run("--tenant", "globex", "--user", "alice")


def test_namespace_option_creates_it_once_with_the_user_as_manager():
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    namespace = Namespace.objects.get()
    assert namespace.name == "group"
    assert NamespacePermission.objects.get(namespace=namespace).level == PermissionLevel.MANAGE


def test_namespace_option_with_invalid_name():
    with pytest.raises(CommandError, match="Invalid organization name"):
        run("--tenant", "acme", "--user", "alice", "--namespace", "Bad Name")


def test_namespace_of_another_tenant_is_refused():
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    with pytest.raises(CommandError, match="another tenant"):
        run("--tenant", "globex", "--user", "bob", "--namespace", "group")
