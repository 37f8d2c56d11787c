"""Admin lists are never filtered by a secret column (issue 11, must-have 1).

``?key_hash__startswith=ac3b`` counted the tokens whose hash starts so: an
oracle. Every lookup that reaches a column of swr.admin.SECRET_FIELDS, from any
model admin, directly or across relations, answers 400 with the error body,
for a superuser as for a view-only account; every filter the lists offer
still works, and using them changes nothing.
"""

import json

import pytest
from django.contrib import admin
from django.test import RequestFactory

from swr import audit, services
from swr.models import AccessKey, ApiToken, TemporaryLogin, User

from .helpers import OPERATOR, api_actor, changelist_url

pytestmark = pytest.mark.django_db

# The columns that hold a secret, its hash or its ciphertext.
SECRET_FIELDS = {
    User._meta.get_field("password"),
    ApiToken._meta.get_field("key_hash"),
    AccessKey._meta.get_field("secret_encrypted"),
    TemporaryLogin._meta.get_field("secret_hash"),
}


def _paths_to_secrets(model, depth=2, prefix=""):
    """Every lookup path from ``model`` to a secret column, following relations up to ``depth`` steps."""
    for field in model._meta.get_fields():
        path = f"{prefix}{field.name}"
        if field in SECRET_FIELDS:
            yield path
        elif field.is_relation and field.related_model is not None and depth > 0:
            yield from _paths_to_secrets(field.related_model, depth - 1, f"{path}__")


SECRET_LOOKUPS = {
    model: [f"{path}__{lookup}" for path in _paths_to_secrets(model) for lookup in ("startswith", "exact")]
    for model in admin.site._registry
}


@pytest.fixture
def secrets(owner):
    """A token, an access key and a password: a row behind each secret column."""
    token, _ = services.token_issue(user=owner, actor=OPERATOR)
    key, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    owner.set_password("alice-password")
    owner.save()
    return token, key


@pytest.fixture
def rows(secrets, owner, namespace, make_tenant, make_user):
    """Besides the secrets, two tenants with an organization each: a list filter shows from two choices on."""
    other = make_user("bob", make_tenant("globex"))
    services.namespace_create(name="other", tenant=other.tenant, creator=other, actor=OPERATOR)
    services.repository_create(namespace=namespace, name="web", is_public=True, actor=OPERATOR)
    audit.record(api_actor(other), "namespace.create", "other", success=True)
    return secrets


def test_every_secret_column_is_reached_by_some_lookup():
    from swr.admin import SECRET_FIELDS as refused

    reached = {lookup.split("__")[-2] for lookups in SECRET_LOOKUPS.values() for lookup in lookups}
    assert reached == {"password", "key_hash", "secret_encrypted", "secret_hash"}
    assert refused == SECRET_FIELDS


@pytest.mark.parametrize("model", list(SECRET_LOOKUPS), ids=lambda m: m._meta.model_name)
@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_lookup_on_a_secret_column_is_refused(secrets, admin_client, view_only_staff, who, model):
    client = admin_client if who == "superuser" else view_only_staff[0]
    assert SECRET_LOOKUPS[model], "every model admin reaches a secret column through some relation"
    for lookup in SECRET_LOOKUPS[model]:
        response = client.get(changelist_url(model), {lookup: "a"})
        assert response.status_code == 400, lookup
        assert response["Content-Type"] == "application/json"  # the error body (handler400), no list
        assert json.loads(response.content)["error_code"] == "SVCSTG.SWR.4000014"


@pytest.mark.parametrize(
    ("model", "column"),
    [(ApiToken, "key_hash"), (AccessKey, "secret_encrypted")],
)
def test_the_example_of_the_issue_is_no_oracle(secrets, admin_client, model, column):
    """``?key_hash__startswith=<its first 4 characters>`` listed the one token; ``zzzz`` listed none."""
    value = getattr(model.objects.get(), column)
    for prefix in (value[:4], "zzzz"):
        response = admin_client.get(changelist_url(model), {f"{column}__startswith": prefix})
        assert response.status_code == 400
        assert b"1 " not in response.content  # no count of rows at all: the JSON error body
        assert response["Content-Type"] == "application/json"


def _filter_queries(model, user):
    """The query strings of every choice of every filter of ``model``'s list, as the page offers them."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get(changelist_url(model))
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    return [
        choice["query_string"]
        for spec in changelist.filter_specs
        for choice in spec.choices(changelist)
        if choice.get("query_string")
    ]


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.model_name)
def test_every_offered_filter_works_for_a_viewer(rows, view_only_staff, model):
    viewer, user = view_only_staff
    queries = _filter_queries(model, user)
    if model_filters := admin.site._registry[model].list_filter:
        assert queries, f"{model_filters} offer no choice"
    for query in queries:
        response = viewer.get(changelist_url(model) + query)
        assert response.status_code == 200, query


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.model_name)
def test_lookups_on_ordinary_columns_still_work(rows, admin_client, model):
    for field in model._meta.concrete_fields:
        if field in SECRET_FIELDS or field.is_relation:
            continue
        response = admin_client.get(changelist_url(model), {f"{field.name}__isnull": "False"})
        assert response.status_code == 200, field.name
