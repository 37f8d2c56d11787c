"""Admin rights, second round (issue 11): the rules of swr.admin's docstring, where a tester found them missing.

1. Credential actions (Revoke, Disable, Enable), the credential's change form and
   "Delete selected" follow the outranking rule for the credential's owner, as issuing does.
2. Django's password form of a user needs the rights to issue that user a token.
3. No query-string value of any admin list (or of the autocomplete view) reaches
   the database as a 500: each answers 4xx or an empty list, on SQLite and PostgreSQL.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from swr import services
from swr.models import AccessKey, ApiToken, AuditRecord, User

pytestmark = pytest.mark.django_db


def _perms(*names):
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def _view_permissions():
    return [
        Permission.objects.get(content_type__app_label=model._meta.app_label, codename=f"view_{model._meta.model_name}")
        for model in admin.site._registry
    ]


@pytest.fixture
def staff():
    """A logged-in staff account with the view permission on every model, plus the given permissions."""

    def make(*permissions, username="clerk"):
        user = User.objects.create_user(username, password="not-used", is_staff=True)
        user.user_permissions.set([*_view_permissions(), *_perms(*permissions)])
        client = Client()
        client.force_login(user)
        return client, user

    return make


@pytest.fixture
def root():
    return User.objects.create_superuser("root", password="root-password")


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _run_action(client, model, action, pks, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": 0, **extra}
    return client.post(_changelist(model), data, follow=True)


# 1. Credential actions and the owner's rank.

KEYCLERK = ("swr.change_accesskey", "swr.change_apitoken")


@pytest.fixture
def root_credentials(root):
    token, _ = services.token_issue(user=root)
    key, _ = services.access_key_issue(user=root)
    disabled, _ = services.access_key_issue(user=root)
    disabled.is_active = False
    disabled.save()
    return token, key, disabled


@pytest.fixture
def powerful(make_user, tenant):
    """No superuser, but holding (through a group) a permission the clerks lack."""
    user = make_user("ops", tenant)
    group = Group.objects.create(name="deleters")
    group.permissions.set(_perms("swr.delete_tenant"))
    user.groups.add(group)
    return user


def _state(*objs):
    for obj in objs:
        obj.refresh_from_db()
    return [(getattr(obj, "revoked_at", None), getattr(obj, "is_active", None)) for obj in objs]


@pytest.mark.parametrize(
    ("model", "action", "which"),
    [(AccessKey, "enable", 2), (AccessKey, "disable", 1), (ApiToken, "revoke", 0)],
)
def test_keyclerk_cannot_act_on_a_superusers_credentials(staff, root_credentials, model, action, which):
    """The example of the issue: keyclerk re-enabled root's disabled key and revoked root's token."""
    client, _ = staff(*KEYCLERK, username="keyclerk")
    before = _state(*root_credentials)
    obj = root_credentials[which]
    response = _run_action(client, model, action, [obj.pk])
    assert response.status_code == 200
    assert "hold rights you do not hold" in response.content.decode()
    assert _state(*root_credentials) == before
    refusal = AuditRecord.objects.get()
    assert (refusal.username, refusal.outcome, refusal.status_code) == ("keyclerk", "failure", 403)
    assert refusal.action == f"{model._meta.model_name}.{action}"


@pytest.mark.parametrize(("model", "action"), [(AccessKey, "enable"), (AccessKey, "disable"), (ApiToken, "revoke")])
def test_a_selection_with_one_outranking_owner_changes_nothing(staff, owner, powerful, model, action):
    client, _ = staff(*KEYCLERK)
    objs = []
    for user in (owner, powerful):
        obj = services.token_issue(user=user)[0] if model is ApiToken else services.access_key_issue(user=user)[0]
        if action == "enable":
            obj.is_active = False
            obj.save()
        objs.append(obj)
    before = _state(*objs)
    _run_action(client, model, action, [obj.pk for obj in objs])
    assert _state(*objs) == before
    assert set(AuditRecord.objects.values_list("outcome", "object")) == {
        ("failure", f"{objs[1]._meta.model_name}:{objs[1].pk} {objs[1]}")
    }


def test_keyclerk_still_acts_on_credentials_of_ordinary_users(staff, owner):
    client, _ = staff(*KEYCLERK)
    token, _ = services.token_issue(user=owner)
    key, _ = services.access_key_issue(user=owner)
    _run_action(client, AccessKey, "disable", [key.pk])
    assert _state(key) == [(None, False)]
    _run_action(client, AccessKey, "enable", [key.pk])
    assert _state(key) == [(None, True)]
    _run_action(client, ApiToken, "revoke", [token.pk])
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert set(AuditRecord.objects.values_list("outcome", flat=True)) == {"success"}


def test_superuser_acts_on_a_superusers_credentials(admin_client, root_credentials):
    token, key, disabled = root_credentials
    _run_action(admin_client, AccessKey, "enable", [disabled.pk])
    _run_action(admin_client, ApiToken, "revoke", [token.pk])
    disabled.refresh_from_db()
    token.refresh_from_db()
    assert disabled.is_active
    assert token.revoked_at is not None


def test_the_change_form_of_a_superusers_key_is_read_only(staff, root_credentials):
    """Sibling: the key's change form edits is_active, the same as Enable and Disable."""
    client, _ = staff(*KEYCLERK)
    _, _, disabled = root_credentials
    url = reverse("admin:swr_accesskey_change", args=[disabled.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.post(url, {"is_active": "on", "description": ""}).status_code == 403
    disabled.refresh_from_db()
    assert not disabled.is_active


@pytest.mark.parametrize("model", [ApiToken, AccessKey])
def test_staff_cannot_delete_a_superusers_credential(staff, root_credentials, model):
    """Sibling: deleting a token or a key is revoking it."""
    client, _ = staff(f"swr.delete_{model._meta.model_name}")
    obj = next(obj for obj in root_credentials if isinstance(obj, model))
    prefix = f"admin:swr_{model._meta.model_name}"
    assert client.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    response = client.post(
        _changelist(model), {"action": "delete_selected", ACTION_CHECKBOX_NAME: [obj.pk], "index": 0, "post": "yes"}
    )
    assert response.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


# 2. A password is a credential.


def _password_url(user):
    return reverse("admin:auth_user_password_change", args=[user.pk])


def _set_password(client, user, password="Taken-over-42"):
    return client.post(_password_url(user), {"password1": password, "password2": password})


def test_userclerk_cannot_set_a_password(staff, make_user, tenant):
    """The example of the issue: change_user without add_apitoken set Bob's password, then logged in as Bob."""
    client, _ = staff("swr.change_user", username="userclerk")
    bob = make_user("bob", tenant)
    bob.set_password("bob-password")
    bob.save()
    assert client.get(_password_url(bob)).status_code == 403
    assert _set_password(client, bob).status_code == 403
    bob.refresh_from_db()
    assert bob.check_password("bob-password")


def test_add_apitoken_without_change_user_cannot_set_a_password(staff, owner):
    client, _ = staff("swr.add_apitoken")
    assert _set_password(client, owner).status_code == 403


def test_a_minter_sets_the_password_of_a_user_within_its_rights(staff, owner, powerful, root):
    client, _ = staff("swr.change_user", "swr.add_apitoken")
    assert client.get(_password_url(owner)).status_code == 200
    assert _set_password(client, owner).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("Taken-over-42")
    for target in (powerful, root):  # ...but not of a user who outranks it
        assert _set_password(client, target).status_code == 403
        target.refresh_from_db()
        assert not target.check_password("Taken-over-42")


def test_superuser_sets_any_password(admin_client, root):
    assert _set_password(admin_client, root).status_code == 302
    root.refresh_from_db()
    assert root.check_password("Taken-over-42")
