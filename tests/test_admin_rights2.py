"""Admin rights, second round (issue 11): the rules of swr.admin's docstring, where a tester found them missing.

1. Credential actions (Revoke, Disable, Enable), the credential's change form and
   "Delete selected" follow the outranking rule for the credential's owner, as issuing does.
2. Django's password form of a user needs the rights to issue that user a token.
3. No query-string value of any admin list (or of the autocomplete view) reaches
   the database as a 500: each answers 4xx or an empty list, on SQLite and PostgreSQL.
"""

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from swr import audit, services
from swr.models import AccessKey, ApiToken, AuditRecord, User

from .helpers import OPERATOR, admin_action, api_actor, changelist_url, perms

pytestmark = pytest.mark.django_db


# 1. Credential actions and the owner's rank.

KEYCLERK = ("swr.change_accesskey", "swr.change_apitoken")


@pytest.fixture
def root_credentials(root):
    token, _ = services.token_issue(user=root, actor=OPERATOR)
    key, _ = services.access_key_issue(user=root, actor=OPERATOR)
    disabled, _ = services.access_key_issue(user=root, actor=OPERATOR)
    disabled.is_active = False
    disabled.save()
    return token, key, disabled


@pytest.fixture
def powerful(make_user, tenant):
    """No superuser, but holding (through a group) a permission the clerks lack."""
    user = make_user("ops", tenant)
    group = Group.objects.create(name="deleters")
    group.permissions.set(perms("swr.delete_tenant"))
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
def test_keyclerk_cannot_act_on_a_superusers_credentials(staff_client, root_credentials, model, action, which):
    """The example of the issue: keyclerk re-enabled root's disabled key and revoked root's token."""
    client, _ = staff_client(*KEYCLERK, username="keyclerk", view_all=True)
    before = _state(*root_credentials)
    obj = root_credentials[which]
    response = admin_action(client, model, action, [obj.pk], follow=True)
    assert response.status_code == 200
    assert "hold rights you do not hold" in response.content.decode()
    assert _state(*root_credentials) == before
    refusal = AuditRecord.objects.get(source="admin")
    assert (refusal.username, refusal.outcome, refusal.status_code) == ("keyclerk", "failure", 403)
    assert refusal.action == f"{model._meta.model_name}.{action}"


@pytest.mark.parametrize(("model", "action"), [(AccessKey, "enable"), (AccessKey, "disable"), (ApiToken, "revoke")])
def test_a_selection_with_one_outranking_owner_changes_nothing(staff_client, owner, powerful, model, action):
    client, _ = staff_client(*KEYCLERK, view_all=True)
    objs = []
    for user in (owner, powerful):
        obj = (
            services.token_issue(user=user, actor=OPERATOR)[0]
            if model is ApiToken
            else services.access_key_issue(user=user, actor=OPERATOR)[0]
        )
        if action == "enable":
            obj.is_active = False
            obj.save()
        objs.append(obj)
    before = _state(*objs)
    admin_action(client, model, action, [obj.pk for obj in objs], follow=True)
    assert _state(*objs) == before
    assert set(AuditRecord.objects.filter(source="admin").values_list("outcome", "object")) == {
        ("failure", f"{objs[1]._meta.model_name}:{objs[1].pk} {objs[1]}")
    }


def test_keyclerk_still_acts_on_credentials_of_ordinary_users(staff_client, owner):
    client, _ = staff_client(*KEYCLERK, view_all=True)
    token, _ = services.token_issue(user=owner, actor=OPERATOR)
    key, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    admin_action(client, AccessKey, "disable", [key.pk], follow=True)
    assert _state(key) == [(None, False)]
    admin_action(client, AccessKey, "enable", [key.pk], follow=True)
    assert _state(key) == [(None, True)]
    admin_action(client, ApiToken, "revoke", [token.pk], follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert set(AuditRecord.objects.filter(source="admin").values_list("outcome", flat=True)) == {"success"}


def test_superuser_acts_on_a_superusers_credentials(admin_client, root_credentials):
    token, key, disabled = root_credentials
    admin_action(admin_client, AccessKey, "enable", [disabled.pk], follow=True)
    admin_action(admin_client, ApiToken, "revoke", [token.pk], follow=True)
    disabled.refresh_from_db()
    token.refresh_from_db()
    assert disabled.is_active
    assert token.revoked_at is not None


def test_the_change_form_of_a_superusers_key_is_read_only(staff_client, root_credentials):
    """Sibling: the key's change form edits is_active, the same as Enable and Disable."""
    client, _ = staff_client(*KEYCLERK, view_all=True)
    _, _, disabled = root_credentials
    url = reverse("admin:swr_accesskey_change", args=[disabled.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.post(url, {"is_active": "on", "description": ""}).status_code == 403
    disabled.refresh_from_db()
    assert not disabled.is_active


@pytest.mark.parametrize("model", [ApiToken, AccessKey])
def test_staff_cannot_delete_a_superusers_credential(staff_client, root_credentials, model):
    """Sibling: deleting a token or a key is revoking it."""
    client, _ = staff_client(f"swr.delete_{model._meta.model_name}", view_all=True)
    obj = next(obj for obj in root_credentials if isinstance(obj, model))
    prefix = f"admin:swr_{model._meta.model_name}"
    assert client.post(reverse(f"{prefix}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    response = admin_action(client, model, "delete_selected", [obj.pk], post="yes")
    assert response.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


# 2. A password is a credential.


def _password_url(user):
    return reverse("admin:auth_user_password_change", args=[user.pk])


def _set_password(client, user, password="Taken-over-42"):
    return client.post(_password_url(user), {"password1": password, "password2": password})


def test_userclerk_cannot_set_a_password(staff_client, make_user, tenant):
    """The example of the issue: change_user without add_apitoken set Bob's password, then logged in as Bob."""
    client, _ = staff_client("swr.change_user", username="userclerk", view_all=True)
    bob = make_user("bob", tenant)
    bob.set_password("bob-password")
    bob.save()
    assert client.get(_password_url(bob)).status_code == 403
    assert _set_password(client, bob).status_code == 403
    bob.refresh_from_db()
    assert bob.check_password("bob-password")


def test_add_apitoken_without_change_user_cannot_set_a_password(staff_client, owner):
    client, _ = staff_client("swr.add_apitoken", view_all=True)
    assert _set_password(client, owner).status_code == 403


def test_a_minter_sets_the_password_of_a_user_within_its_rights(staff_client, owner, powerful, root):
    client, _ = staff_client("swr.change_user", "swr.add_apitoken", view_all=True)
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


# 3. Query-string values of the admin lists: never a 500.

NUL = "\x00"
HUGE = "99999999999999999999"  # beyond any integer column and any year
BAD_VALUES = [NUL, HUGE, f"-{HUGE}", f"a{NUL}b"]


def _request(user, path="/admin/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


def _list_params(model, user):
    """Every query-string parameter the list of ``model`` reads, each with every bad value."""
    model_admin = admin.site._registry[model]
    changelist = model_admin.get_changelist_instance(_request(user, changelist_url(model)))
    params = [
        (name, value) for spec in changelist.filter_specs for name in spec.expected_parameters() for value in BAD_VALUES
    ]
    if model_admin.search_fields:
        params += [("q", NUL), ("q", f"web{NUL}")]
    if field := model_admin.date_hierarchy:
        for part in ("year", "month", "day"):
            params += [(f"{field}__{part}", value) for value in (*BAD_VALUES, "99999999999", "0")]
        params += [(f"{field}__year", f"9999&{field}__month=12&{field}__day=31")]
    for column in model._meta.concrete_fields:
        if column.name in ("password", "key_hash", "secret_encrypted"):
            continue
        params += [(column.attname, value) for value in BAD_VALUES]
        if column.get_internal_type() in ("DateTimeField", "DateField"):
            params += [(f"{column.name}__year", "99999999999")]
        if column.get_internal_type() in ("CharField", "TextField"):
            params += [(f"{column.name}__regex", "[")]
    params += [("o", value) for value in (*BAD_VALUES, "99999999999")]
    params += [("p", value) for value in (*BAD_VALUES, "99999999999", "-1")]
    return params


@pytest.fixture
def rows(owner, namespace, root, make_user, make_tenant):
    """A row in every table the admin lists, so that every filter offers its choices."""
    bob = make_user("bob", make_tenant("globex"))
    services.namespace_create(name="other", tenant=bob.tenant, creator=bob, actor=OPERATOR)
    services.repository_create(namespace=namespace, name="web", is_public=True, creator=owner, actor=OPERATOR)
    services.token_issue(user=owner, actor=OPERATOR)
    services.access_key_issue(user=owner, actor=OPERATOR)
    audit.record(api_actor(bob), "namespace.create", "other", success=True)
    Group.objects.create(name="operators")


def _acceptable(response) -> bool:
    """A 4xx with the SWR error body, or the list with no row."""
    if response.status_code == 200:
        return response.context["cl"].result_count == 0
    return 400 <= response.status_code < 500 and "error_code" in json.loads(response.content)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.model_name)
def test_no_query_string_value_of_any_list_is_a_500(rows, view_only_staff, model):
    client, user = view_only_staff
    client.raise_request_exception = False
    params = _list_params(model, user)
    failures = []
    for name, value in params:
        response = client.get(f"{changelist_url(model)}?{name}=" + value.replace(NUL, "%00"))
        if (name in ("o", "p") or name.endswith("__isnull")) and response.status_code == 200:
            # No value reaches the database: an ordering index that is not a column is ignored, a page
            # number is brought within the pages, any isnull value but "false" or "0" means true.
            continue
        if not _acceptable(response):
            failures.append((name, value, response.status_code))
    assert not failures


def test_the_examples_of_the_issue(rows, view_only_staff):
    client, _ = view_only_staff
    client.raise_request_exception = False
    response = client.get(changelist_url(AuditRecord), {"created_at__year": "99999999999"})
    assert response.status_code == 400
    assert "query string" in json.loads(response.content)["error_msg"]
    response = client.get(
        "/admin/autocomplete/", {"app_label": "swr", "model_name": "repository", "field_name": "namespace", "term": NUL}
    )
    assert response.status_code == 200
    assert response.json()["results"] == []


AUTOCOMPLETES = [
    (model, field) for model, model_admin in admin.site._registry.items() for field in model_admin.autocomplete_fields
]


@pytest.mark.parametrize(("model", "field"), AUTOCOMPLETES, ids=[f"{m._meta.model_name}-{f}" for m, f in AUTOCOMPLETES])
@pytest.mark.parametrize("extra", [{"term": NUL}, {"term": f"oth{NUL}"}, {"term": "o", "page": HUGE}, {"page": NUL}])
def test_no_autocomplete_value_is_a_500(rows, view_only_staff, model, field, extra):
    client, _ = view_only_staff
    client.raise_request_exception = False
    query = {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": field, **extra}
    response = client.get("/admin/autocomplete/", query)
    if response.status_code == 200:
        assert response.json()["results"] == []
    else:
        assert 400 <= response.status_code < 500


def test_valid_lists_still_show_their_rows(rows, view_only_staff):
    client, _ = view_only_staff
    response = client.get(changelist_url(AuditRecord), {"q": "namespace", "created_at__year": "2000"})
    assert response.status_code == 200
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "swr", "model_name": "repository", "field_name": "namespace", "term": "oth"},
    )
    assert [result["text"] for result in response.json()["results"]] == ["other"]


def test_adding_a_user_needs_the_rights_to_issue_a_token(staff_client, tenant):
    """Sibling of the password form: the add form sets a password (and the tenant-administrator flag), so an
    account with add_user and change_user (Django's add form needs both) but no add_apitoken made a tenant
    administrator of any tenant and logged in as it."""
    client, _ = staff_client("swr.add_user", "swr.change_user", username="adder", view_all=True)
    form = {"username": "mole", "password1": "Mole-pass-42x", "password2": "Mole-pass-42x", "usable_password": "true",
            "tenant": tenant.pk, "is_tenant_admin": "on"}  # fmt: skip
    assert client.get(reverse("admin:swr_user_add")).status_code == 403
    assert client.post(reverse("admin:swr_user_add"), form).status_code == 403
    assert not User.objects.filter(username="mole").exists()
    client, _ = staff_client("swr.add_user", "swr.change_user", "swr.add_apitoken", username="minter", view_all=True)
    assert client.get(reverse("admin:swr_user_add")).status_code == 200
