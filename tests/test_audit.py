"""The audit trail (swr/audit.py): each change recorded once, by its service, in the change's transaction;
refusals recorded once, at the door they came through (the API's edge, the admin's views)."""

import inspect
import re

import pytest
from django.core.management import call_command
from django.db import models
from django.db.models import signals

from swr import audit, services
from swr import models as swr_models
from swr.audit import Actor
from swr.distribution import gc as distribution_gc
from swr.distribution import services as distribution_services
from swr.errors import RepositoryExists, RepositoryQuotaExceeded
from swr.models import AuditRecord, Namespace, Repository, Tenant

from .helpers import api_actor


def _records(**filters):
    return list(AuditRecord.objects.filter(**filters).order_by("id").values_list("action", "object", "outcome"))


def test_every_write_service_records_its_change_with_the_actor(owner, tenant, bob, namespace):
    actor = Actor(user=owner, source=audit.Source.API, request_id="req-1")
    web = services.repository_create(namespace=namespace, name="nginx/web", is_public=False, actor=actor)
    services.repository_update(repository=web, is_public=True, actor=actor)
    services.grants_create(obj=namespace, levels={bob: 1}, actor=actor)
    services.grants_create(obj=web, levels={bob: 1}, actor=actor)
    services.grants_update(obj=web, levels={bob: 3}, actor=actor)
    services.grants_delete(obj=web, users=[bob], actor=actor)
    services.repository_delete(repository=web, actor=actor)
    team = services.namespace_create(name="team", tenant=tenant, creator=owner, actor=actor)
    services.namespace_delete(namespace=team, actor=actor)
    token, _ = services.token_issue(user=bob, actor=actor)
    services.token_revoke(token=token, actor=actor)
    key, _ = services.access_key_issue(user=bob, actor=actor)
    assert _records(request_id="req-1") == [
        ("repository.create", "group/nginx/web", "success"),
        ("repository.update", "group/nginx/web", "success"),
        ("namespace.grants.create", "group", "success"),
        ("repository.grants.create", "group/nginx/web", "success"),
        ("repository.grants.update", "group/nginx/web", "success"),
        ("repository.grants.delete", "group/nginx/web", "success"),
        ("repository.delete", "group/nginx/web", "success"),
        ("namespace.create", "team", "success"),
        ("namespace.delete", "team", "success"),
        ("apitoken.create", f"apitoken:{token.pk} {token}", "success"),
        ("apitoken.revoke", f"apitoken:{token.pk} {token}", "success"),
        ("accesskey.create", f"accesskey:{key.pk} {key}", "success"),
    ]
    records = AuditRecord.objects.filter(request_id="req-1")
    assert {(r.source, r.user_id, r.username, r.tenant_id, r.status_code) for r in records} == {
        ("api", owner.pk, "alice", tenant.pk, None)
    }


def test_a_refused_change_leaves_no_success_record(owner, tenant, namespace):
    actor = api_actor(owner)
    services.repository_create(namespace=namespace, name="web", is_public=False, actor=actor)
    with pytest.raises(RepositoryExists):
        services.repository_create(namespace=namespace, name="web", is_public=False, actor=actor)
    Tenant.objects.filter(pk=tenant.pk).update(repository_quota=1)
    with pytest.raises(RepositoryQuotaExceeded):
        services.repository_create(namespace=namespace, name="api", is_public=False, actor=actor)
    assert _records(source="api") == [("repository.create", "group/web", "success")]


def test_a_change_whose_record_cannot_be_stored_is_not_made(owner, namespace, monkeypatch):
    """The record is written in the change's transaction: no record, no change."""

    def broken(*args, **kwargs):
        raise RuntimeError("the audit table is away")

    monkeypatch.setattr(services, "record", broken)
    with pytest.raises(RuntimeError):
        services.repository_create(namespace=namespace, name="web", is_public=False, actor=api_actor(owner))
    assert not Repository.objects.filter(name="web").exists()
    assert Tenant.objects.get(pk=namespace.tenant_id).repository_count == 0


def test_the_api_records_a_change_once_and_a_refusal_once(api, namespace):
    body = {"repository": "web", "is_public": True}
    assert api.post("/v2/manage/namespaces/group/repos", body, format="json").status_code == 201
    assert api.post("/v2/manage/namespaces/group/repos", body, format="json").status_code == 409
    assert api.delete("/v2/manage/namespaces/group/repos/web").status_code == 204
    assert api.delete("/v2/manage/namespaces/group/repos/web").status_code == 404
    assert _records(source="api") == [
        ("repository.create", "group/web", "success"),
        ("repository.create", "group/web", "failure"),
        ("repository.delete", "group/web", "success"),
        ("repository.delete", "group/web", "failure"),
    ]
    refusals = AuditRecord.objects.filter(source="api", outcome="failure").order_by("id")
    assert [(r.status_code, r.detail.split(":")[0]) for r in refusals] == [
        (409, "SVCSTG.SWR.4090006"),
        (404, "SVCSTG.SWR.4040010"),
    ]


def test_the_admin_records_a_change_made_by_a_service_once(admin_client, admin_user, tenant):
    response = admin_client.post("/admin/swr/namespace/add/", _namespace_form(tenant))
    assert response.status_code == 302, response.content[:2000]
    assert _records(source="admin") == [("namespace.create", "team", "success")]
    namespace = Namespace.objects.get(name="team")
    assert admin_client.post(f"/admin/swr/namespace/{namespace.pk}/delete/", {"post": "yes"}).status_code == 302
    assert _records(source="admin") == [
        ("namespace.create", "team", "success"),
        ("namespace.delete", "team", "success"),
    ]
    assert set(AuditRecord.objects.filter(source="admin").values_list("user", flat=True)) == {admin_user.pk}


def _namespace_form(tenant) -> dict:
    form = {"name": "team", "tenant": tenant.pk, "creator": ""}
    for prefix in ("repositories", "permissions"):
        form.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    return form


def test_management_commands_record_as_the_operator(db, capsys):
    call_command("swr_token", "--tenant", "acme", "--user", "alice", "--namespace", "group")
    call_command("swr_accesskey", "--tenant", "acme", "--user", "alice")
    records = AuditRecord.objects.order_by("id")
    assert [(r.source, r.action, r.user_id) for r in records] == [
        ("command", "namespace.create", None),
        ("command", "apitoken.create", None),
        ("command", "accesskey.create", None),
    ]


# Hand-written SQL: the statements the services write out (swr.services.lock_row, a row lock Django's
# select_for_update() cannot express; the registry's UPDATEs of an upload session found by its names, which
# a small chunk and a final PUT make in one round trip) name their tables and columns from the models' _meta.
# Should a model they touch gain behaviour that the ORM would run around its rows, they would bypass it: this
# guard fails first.
LOCKERS = (services, distribution_services, distribution_gc)
LOCKED = sorted(
    {name for module in LOCKERS for name in re.findall(r"lock_row\((\w+),", inspect.getsource(module))} - {"type"}
    | {"RepositoryBlob"}  # distribution.services._hold_links: the same lock on several links of a manifest push
    | {"Upload"}  # distribution.services._record_part and _mark: UPDATEs of an upload session found by its names
    # (and distribution.services._link_new_blob: INSERTs of a Blob and a RepositoryBlob, an UPDATE of a Repository,
    # a DELETE of an Upload, in one statement on PostgreSQL)
)


@pytest.mark.parametrize("name", LOCKED)
def test_models_locked_by_hand_written_sql_have_no_hidden_behaviour(name):
    model = getattr(swr_models, name)
    assert issubclass(model, models.Model)
    assert model.save is models.Model.save, f"{name} overrides save()"
    assert model.delete is models.Model.delete, f"{name} overrides delete()"
    for signal in (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete):
        assert not signal.has_listeners(model), f"{name} has a receiver of {signal}"
    for field in model._meta.concrete_fields:
        assert not isinstance(field, models.GeneratedField), f"{name}.{field.name} is generated"
        assert field.db_default is models.NOT_PROVIDED, f"{name}.{field.name} has a db_default"


def test_the_guard_knows_every_locked_model():
    assert LOCKED == ["Blob", "Manifest", "Namespace", "Repository", "RepositoryBlob", "Tenant", "Upload"]
