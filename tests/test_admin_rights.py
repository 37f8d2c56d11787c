"""Admin rights (issue 11, must-have 1): a staff account does only what its permissions say, never more.

The rules are in the docstring of swr.admin. The view-only account (the fixture
view_only_staff) holds the view permission on every model of the admin site and
nothing else; every action of every model admin is tried with it, and nothing
may change.
"""

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from swr import audit, services
from swr.choices import PermissionLevel
from swr.distribution import services as registry_services
from swr.models import (
    AccessKey,
    ApiToken,
    AuditRecord,
    Namespace,
    Repository,
    RepositoryPermission,
    Tenant,
    User,
)

from .helpers import OPERATOR, admin_action, api_actor, changelist_url, perms

pytestmark = pytest.mark.django_db


def _superuser_request():
    """A request of an (unsaved) active superuser: what get_actions offers to somebody who may do everything."""
    request = RequestFactory().get("/admin/")
    request.user = User(username="probe", is_superuser=True, is_staff=True, is_active=True)
    return request


# Every action of every model admin of the site, from Django's own registry.
ALL_ACTIONS = [
    (model, name)
    for model, model_admin in admin.site._registry.items()
    for name in model_admin.get_actions(_superuser_request())
]


@pytest.fixture
def world(tenant, owner, namespace, root, make_user, make_tenant):
    """One row of every model the admin shows, so that each action has something to act on."""
    repository = services.repository_create(
        namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR
    )
    # A manifest and its tag, pushed as the registry stores them (an empty image index needs no blobs).
    index = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}'
    registry_services.manifest_put(
        repository, "v1", index, "application/vnd.oci.image.index.v1+json", OPERATOR, tags=["v1"]
    )
    RepositoryPermission.objects.create(repository=repository, user=owner, level=PermissionLevel.MANAGE)
    make_user("bob", make_tenant("globex"), is_tenant_admin=True)
    for user in (owner, root):
        services.token_issue(user=user, actor=OPERATOR)
        services.access_key_issue(user=user, actor=OPERATOR)
        services.temporary_login_issue(user=user, kind="secret", lifetime=timedelta(hours=1), actor=OPERATOR)
    services.share_create(repository=repository, access_domain=Tenant.objects.get(name="globex"), actor=OPERATOR)
    disabled, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    disabled.is_active = False
    disabled.save()
    audit.record(api_actor(owner), "namespace.create", "group", success=True)
    group = Group.objects.create(name="operators")
    group.permissions.set(perms("swr.view_tenant"))
    return {"repository": repository}


def snapshot():
    """Every row of every table (sessions aside: logging in writes one), to show that nothing changed."""
    state = {}
    for model in apps.get_models(include_auto_created=True):
        if model is Session:
            continue
        state[model._meta.label] = sorted(map(repr, model.objects.values_list()))
    return state


@pytest.mark.parametrize(("model", "action"), ALL_ACTIONS, ids=[f"{m._meta.model_name}-{a}" for m, a in ALL_ACTIONS])
def test_view_only_staff_can_run_no_action(world, view_only_staff, model, action):
    """Issue 11: every admin action that changes data needs the change (or delete) permission on its model."""
    client, user = view_only_staff
    assert client.get(changelist_url(model)).status_code == 200  # it may look...
    request = RequestFactory().get("/admin/")
    request.user = user
    assert action not in admin.site._registry[model].get_actions(request)  # ...is offered no action...
    before = snapshot()
    pks = list(model.objects.values_list("pk", flat=True))
    assert pks, f"the fixture has no {model._meta.verbose_name} to act on"
    response = admin_action(client, model, action, pks, post="yes")  # "post": the delete confirmation
    assert response.status_code in (200, 302, 403)
    assert b"<code>swr_" not in response.content
    assert snapshot() == before  # ...and changes nothing: no token, no key, no audit record, no deletion


def test_the_matrix_covers_the_actions_of_the_issue():
    names = {(model._meta.model_name, action) for model, action in ALL_ACTIONS}
    assert {
        ("user", "issue_token"),
        ("user", "issue_access_key"),
        ("apitoken", "revoke"),
        ("accesskey", "disable"),
        ("accesskey", "enable"),
        ("repository", "delete_selected"),
    } <= names


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.model_name)
def test_view_only_staff_can_add_change_or_delete_nothing(world, view_only_staff, model):
    client, _ = view_only_staff
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    obj = model.objects.first()
    before = snapshot()
    assert client.get(reverse(f"{prefix}_add")).status_code == 403
    assert client.post(reverse(f"{prefix}_add"), {}).status_code == 403
    assert client.post(reverse(f"{prefix}_change", args=[obj.pk]), {}).status_code == 403
    assert client.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("action", ["issue_token", "issue_access_key"])
def test_view_only_staff_mints_nothing_for_a_superuser(world, view_only_staff, root, action):
    """The example of the issue: a view-only account minted a superuser's token, and deleted with it (204)."""
    client, _ = view_only_staff
    response = admin_action(client, User, action, [root.pk], follow=True)
    assert "<code>" not in response.content.decode()
    assert ApiToken.objects.filter(user=root).count() == 1  # the fixture's own
    assert AccessKey.objects.filter(user=root).count() == 1


# Superusers keep every action.


def _tokens_in(response) -> list[str]:
    return re.findall(r"<code>(swr_[^<]+)</code>", response.content.decode())


def test_superuser_issues_a_token_for_a_superuser(admin_client, root):
    response = admin_action(admin_client, User, "issue_token", [root.pk], follow=True)
    (raw,) = _tokens_in(response)
    assert ApiToken.objects.get(user=root).key_hash == ApiToken.hash_key(raw)


def test_superuser_issues_an_access_key(admin_client, owner):
    response = admin_action(admin_client, User, "issue_access_key", [owner.pk], follow=True)
    assert response.status_code == 200
    key = AccessKey.objects.get(user=owner)
    assert key.access_key in response.content.decode()


def test_superuser_revokes_disables_and_enables(admin_client, owner):
    token, _ = services.token_issue(user=owner, actor=OPERATOR)
    key, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    admin_action(admin_client, ApiToken, "revoke", [token.pk])
    token.refresh_from_db()
    assert token.revoked_at is not None
    admin_action(admin_client, AccessKey, "disable", [key.pk])
    key.refresh_from_db()
    assert not key.is_active
    admin_action(admin_client, AccessKey, "enable", [key.pk])
    key.refresh_from_db()
    assert key.is_active
    actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"apitoken.revoke", "accesskey.disable", "accesskey.enable"} <= actions


def test_delete_selected_goes_through_the_services(admin_client, namespace, tenant):
    """Django's built-in action deletes through the services, which give the quota places back."""
    for name in ("a", "b"):
        services.repository_create(namespace=namespace, name=name, is_public=False, actor=OPERATOR)
    tenant.refresh_from_db()
    assert tenant.repository_count == 2
    pks = list(Repository.objects.values_list("pk", flat=True))
    response = admin_action(admin_client, Repository, "delete_selected", pks, post="yes")
    assert response.status_code == 302
    assert not Repository.objects.exists()
    tenant.refresh_from_db()
    assert tenant.repository_count == 0


# Staff with the right permissions, and the limits of those permissions.


MINTERS = ("swr.view_user", "swr.change_user", "swr.add_apitoken", "swr.add_accesskey")


@pytest.mark.parametrize("action", ["issue_token", "issue_access_key"])
def test_staff_who_may_change_users_cannot_mint_for_a_superuser(staff_client, root, action):
    """Minting a credential for a superuser needs to be a superuser."""
    client, _ = staff_client(*MINTERS)
    response = admin_action(client, User, action, [root.pk], follow=True)
    assert response.status_code == 200
    assert "a superuser&#x27;s credentials are issued only by a superuser" in response.content.decode()
    assert not ApiToken.objects.exists()
    assert not AccessKey.objects.exists()
    refusal = AuditRecord.objects.get()  # the attempt is on record
    assert (refusal.username, refusal.outcome, refusal.status_code) == ("staff", "failure", 403)
    assert refusal.object.endswith(" root")


@pytest.mark.parametrize("action", ["issue_token", "issue_access_key"])
def test_staff_cannot_mint_for_a_user_holding_rights_it_lacks(staff_client, make_user, tenant, owner, action):
    """Rights held through a group count, and so do those of a disabled account (it can be enabled again)."""
    client, _ = staff_client(*MINTERS)
    powerful = make_user("ops", tenant)
    group = Group.objects.create(name="deleters")
    group.permissions.set(perms("swr.delete_tenant"))
    powerful.groups.add(group)
    dormant = make_user("dormant", tenant)
    dormant.user_permissions.set(perms("swr.delete_namespace"))
    dormant.is_active = False
    dormant.save()
    for target in (powerful, dormant):
        admin_action(client, User, action, [target.pk])
    # A selection that holds one such user issues nothing at all, not even for the others.
    admin_action(client, User, action, [owner.pk, powerful.pk])
    assert not ApiToken.objects.exists()
    assert not AccessKey.objects.exists()


def test_staff_with_the_permissions_mints_for_an_ordinary_user(staff_client, owner):
    client, _ = staff_client(*MINTERS)
    response = admin_action(client, User, "issue_token", [owner.pk], follow=True)
    (raw,) = _tokens_in(response)
    api = APIClient()
    api.credentials(HTTP_X_AUTH_TOKEN=raw)
    assert api.get("/v2/manage/namespaces").status_code == 200
    admin_action(client, User, "issue_access_key", [owner.pk])
    assert AccessKey.objects.filter(user=owner).count() == 1


@pytest.mark.parametrize(
    ("permissions", "action", "model"),
    [
        (("swr.view_user", "swr.change_user"), "issue_token", ApiToken),  # no add on tokens
        (("swr.view_user", "swr.add_apitoken"), "issue_token", ApiToken),  # no change on users
        (("swr.view_user", "swr.change_user", "swr.add_apitoken"), "issue_access_key", AccessKey),
        (("swr.view_user", "swr.add_accesskey"), "issue_access_key", AccessKey),
    ],
)
def test_minting_needs_change_on_users_and_add_on_the_credential(staff_client, owner, permissions, action, model):
    client, _ = staff_client(*permissions)
    admin_action(client, User, action, [owner.pk])
    assert not model.objects.exists()


@pytest.mark.parametrize(
    ("model", "action", "change"),
    [(ApiToken, "revoke", "swr.change_apitoken"), (AccessKey, "disable", "swr.change_accesskey")],
)
def test_credential_actions_need_change_on_their_model(staff_client, owner, model, action, change):
    token, _ = services.token_issue(user=owner, actor=OPERATOR)
    key, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    obj = token if model is ApiToken else key
    viewer, _ = staff_client(f"swr.view_{model._meta.model_name}", username="viewer")
    admin_action(viewer, model, action, [obj.pk])
    token.refresh_from_db()
    key.refresh_from_db()
    assert (token.revoked_at, key.is_active) == (None, True)
    changer, _ = staff_client(f"swr.view_{model._meta.model_name}", change, username="changer")
    admin_action(changer, model, action, [obj.pk])
    token.refresh_from_db()
    key.refresh_from_db()
    assert token.revoked_at is not None if model is ApiToken else not key.is_active


def test_staff_cannot_set_a_superusers_password(staff_client, root):
    """A password is a credential too: Django's password form of a superuser is a superuser's."""
    client, _ = staff_client("swr.view_user", "swr.change_user")
    url = reverse("admin:auth_user_password_change", args=[root.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"password1": "Taken-over-42", "password2": "Taken-over-42"})
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.check_password("root-password")
    # The change form shows the superuser read-only.
    form_page = client.get(reverse("admin:swr_user_change", args=[root.pk]))
    assert form_page.status_code == 200
    assert not form_page.context["has_change_permission"]


def test_staff_cannot_delete_a_superuser(staff_client, root):
    client, _ = staff_client("swr.view_user", "swr.delete_user")
    assert client.post(reverse("admin:swr_user_delete", args=[root.pk]), {"post": "yes"}).status_code == 403
    response = admin_action(client, User, "delete_selected", [root.pk], post="yes")
    assert response.status_code == 403
    assert User.objects.filter(pk=root.pk).exists()


def _user_form(user, **changes):
    """The fields of the user change form as the browser posts them."""
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on" if user.is_staff else "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "initial-date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "tenant": user.tenant_id or "",
        "user_permissions": [str(p.pk) for p in user.user_permissions.all()],
        "groups": [str(g.pk) for g in user.groups.all()],
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_staff_cannot_make_itself_superuser(staff_client):
    client, user = staff_client("swr.view_user", "swr.change_user")
    response = client.post(reverse("admin:swr_user_change", args=[user.pk]), _user_form(user, is_superuser="on"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_superuser


def test_staff_gives_only_permissions_it_holds(staff_client):
    client, user = staff_client("swr.view_user", "swr.change_user")
    others = perms("swr.delete_tenant")
    response = client.post(
        reverse("admin:swr_user_change", args=[user.pk]),
        _user_form(user, user_permissions=[str(p.pk) for p in [*user.user_permissions.all(), *others]]),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "user_permissions" in response.context["adminform"].form.errors
    assert not user.user_permissions.filter(codename="delete_tenant").exists()
    form = client.get(reverse("admin:swr_user_change", args=[user.pk])).context["adminform"].form
    offered = {p.codename for p in form.fields["user_permissions"].queryset}
    assert offered == {"view_user", "change_user"}


def test_staff_cannot_join_a_group_with_more_rights(staff_client):
    client, user = staff_client("swr.view_user", "swr.change_user")
    strong = Group.objects.create(name="strong")
    strong.permissions.set(perms("swr.delete_tenant"))
    response = client.post(
        reverse("admin:swr_user_change", args=[user.pk]),
        _user_form(user, groups=[str(strong.pk)]),
    )
    assert response.status_code == 200
    assert not user.groups.exists()


def test_staff_cannot_give_its_group_more_rights(staff_client):
    """Django's group admin lets "change group" add any permission; here only those the staff account holds."""
    client, user = staff_client("auth.view_group", "auth.change_group", "swr.view_tenant")
    group = Group.objects.create(name="mine")
    group.permissions.set(perms("swr.view_tenant"))
    user.groups.add(group)
    extra = perms("swr.delete_tenant", "swr.view_tenant")
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "mine", "permissions": [str(p.pk) for p in extra]},
    )
    assert response.status_code == 200
    assert set(group.permissions.values_list("codename", flat=True)) == {"view_tenant"}
    # A group that already holds more than the staff account is not theirs to change.
    strong = Group.objects.create(name="strong")
    strong.permissions.set(perms("swr.delete_tenant"))
    response = client.post(reverse("admin:auth_group_change", args=[strong.pk]), {"name": "renamed"})
    assert response.status_code == 403
    assert Group.objects.filter(name="strong").exists()


def test_staff_edits_users_within_its_rights(staff_client, owner, tenant):
    client, _ = staff_client("swr.view_user", "swr.change_user")
    response = client.post(
        reverse("admin:swr_user_change", args=[owner.pk]), _user_form(owner, first_name="Alice", is_staff="")
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    owner.refresh_from_db()
    assert owner.first_name == "Alice"
    assert Tenant.objects.get() == tenant
    assert Namespace.objects.count() == 0
