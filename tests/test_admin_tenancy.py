"""Grants and creators name users of the same tenant, in the admin too (issue 11, must-have 1).

The rule is on the models (``clean()`` of Namespace, Repository and the grants;
User keeps its tenant while it holds grants), so the admin's forms, its inlines
and the services, which all run ``full_clean()``, refuse the same things.
"""

import pytest
from django.core.exceptions import ValidationError

from swr import services
from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission, Tenant

from .helpers import OPERATOR, admin_form

pytestmark = pytest.mark.django_db

OTHER_TENANT = "Permissions can only name users of the same tenant."
OTHER_CREATOR = "The creator must be a user of the organization's tenant."


@pytest.fixture
def stranger(make_user, other_tenant):
    """bob, of tenant globex."""
    return make_user("bob", other_tenant)


def _grants(*rows):
    """The forms of a grants inline: a (user, level) each."""
    return [{"user": user.pk, "level": level} for user, level in rows]


def _add_organization(client, name, tenant, creator, *grants):
    data = admin_form(
        {"name": name, "tenant": tenant.pk, "creator": creator.pk}, repositories=[], permissions=_grants(*grants)
    )
    return client.post("/admin/swr/namespace/add/", data)


def _inline_errors(response, index):
    return response.context["inline_admin_formsets"][index].formset.errors


def test_organization_of_one_tenant_with_a_creator_of_another_is_refused(admin_client, owner, other_tenant):
    """The example of the issue: tenant B, creator of tenant A, stored a manage grant across tenants."""
    response = _add_organization(admin_client, "team", other_tenant, owner)
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["creator"] == [OTHER_CREATOR]
    assert not Namespace.objects.exists()
    assert not NamespacePermission.objects.exists()
    other_tenant.refresh_from_db()
    assert other_tenant.namespace_count == 0


def test_inline_grant_for_a_user_of_another_tenant_is_refused(admin_client, owner, tenant, stranger):
    response = _add_organization(admin_client, "team", tenant, owner, (stranger, PermissionLevel.READ))
    assert response.status_code == 200
    assert _inline_errors(response, 1) == [{"user": [OTHER_TENANT]}]
    assert not Namespace.objects.exists()


def test_inline_grant_for_a_user_of_the_same_tenant_is_stored(admin_client, owner, tenant, make_user):
    """The add page used to refuse every grant typed on it: it judged them before the organization existed."""
    bob = make_user("bob", tenant)
    response = _add_organization(admin_client, "team", tenant, owner, (bob, PermissionLevel.EDIT))
    assert response.status_code == 302, _inline_errors(response, 1)
    levels = dict(NamespacePermission.objects.values_list("user__username", "level"))
    assert levels == {"alice": PermissionLevel.MANAGE, "bob": PermissionLevel.EDIT}


def test_inline_grant_for_the_creator_is_a_form_error(admin_client, owner, tenant):
    """The creator gets manage from the service: a second grant for them would break the unique constraint."""
    response = _add_organization(admin_client, "team", tenant, owner, (owner, PermissionLevel.READ))
    assert response.status_code == 200
    assert _inline_errors(response, 1) == [{"user": ["The creator gets the manage permission with the organization."]}]
    assert not Namespace.objects.exists()


def test_inline_grant_on_an_organization_page(admin_client, namespace, stranger, make_user, tenant):
    data = admin_form(
        {"creator": namespace.creator_id}, repositories=[], permissions=_grants((stranger, PermissionLevel.READ))
    )
    data.update({"permissions-INITIAL_FORMS": 0})
    url = f"/admin/swr/namespace/{namespace.pk}/change/"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert _inline_errors(response, 1) == [{"user": [OTHER_TENANT]}]
    carol = make_user("carol", tenant)
    admin_form(data, permissions=_grants((carol, PermissionLevel.READ)))
    assert admin_client.post(url, data).status_code == 302
    assert NamespacePermission.objects.filter(user=carol, namespace=namespace).exists()


def test_organization_creator_changed_to_another_tenant_is_refused(admin_client, namespace, stranger):
    data = admin_form({"creator": stranger.pk}, repositories=[], permissions=[])
    response = admin_client.post(f"/admin/swr/namespace/{namespace.pk}/change/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["creator"] == [OTHER_CREATOR]


def _repository_form(namespace, name, creator, *grants):
    data = {"namespace": namespace.pk, "name": name, "category": "other", "description": "", "creator": creator.pk}
    return admin_form(data, permissions=_grants(*grants))


def test_repository_creator_of_another_tenant_is_refused(admin_client, namespace, stranger, tenant):
    response = admin_client.post("/admin/swr/repository/add/", _repository_form(namespace, "web", stranger))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["creator"] == [OTHER_CREATOR]
    assert not Repository.objects.exists()
    tenant.refresh_from_db()
    assert tenant.repository_count == 0


def test_repository_inline_grant_for_another_tenant_is_refused(admin_client, namespace, owner, stranger):
    response = admin_client.post(
        "/admin/swr/repository/add/",
        _repository_form(namespace, "web", owner, (stranger, PermissionLevel.READ)),
    )
    assert response.status_code == 200
    assert _inline_errors(response, 0) == [{"user": [OTHER_TENANT]}]
    assert not Repository.objects.exists()


def test_repository_inline_grant_of_the_same_tenant_is_stored(admin_client, namespace, owner, make_user, tenant):
    bob = make_user("bob", tenant)
    response = admin_client.post(
        "/admin/swr/repository/add/", _repository_form(namespace, "web", owner, (bob, PermissionLevel.MANAGE))
    )
    assert response.status_code == 302
    assert RepositoryPermission.objects.get().user == bob


@pytest.mark.parametrize("model", ["namespacepermission", "repositorypermission"])
def test_grant_pages_refuse_another_tenant(admin_client, namespace, stranger, model):
    repository = services.repository_create(namespace=namespace, name="web", is_public=False, actor=OPERATOR)
    target = {"namespacepermission": ("namespace", namespace), "repositorypermission": ("repository", repository)}
    field, obj = target[model]
    response = admin_client.post(f"/admin/swr/{model}/add/", {field: obj.pk, "user": stranger.pk, "level": 1})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"] == [OTHER_TENANT]


def test_user_holding_grants_cannot_move_to_another_tenant(admin_client, owner, namespace, other_tenant):
    """Moving alice would leave her grants naming a user of another tenant."""
    data = {
        "username": owner.username,
        "date_joined_0": owner.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": owner.date_joined.strftime("%H:%M:%S"),
        "is_active": "on",
        "tenant": other_tenant.pk,
    }
    response = admin_client.post(f"/admin/swr/user/{owner.pk}/change/", data)
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    owner.refresh_from_db()
    assert owner.tenant.name == "acme"
    NamespacePermission.objects.filter(user=owner).delete()
    assert admin_client.post(f"/admin/swr/user/{owner.pk}/change/", data).status_code == 302


# The services run the same clean(): the rule holds for every caller, not only for the admin.


def test_namespace_create_service_refuses_a_creator_of_another_tenant(owner, other_tenant):
    with pytest.raises(ValidationError) as info:
        services.namespace_create(name="team", tenant=other_tenant, creator=owner, actor=OPERATOR)
    assert info.value.message_dict == {"creator": [OTHER_CREATOR]}
    assert not Namespace.objects.exists()
    assert not NamespacePermission.objects.exists()
    assert Tenant.objects.get(pk=other_tenant.pk).namespace_count == 0


def test_repository_create_service_refuses_a_creator_of_another_tenant(namespace, stranger, tenant):
    with pytest.raises(ValidationError) as info:
        services.repository_create(namespace=namespace, name="web", is_public=False, creator=stranger, actor=OPERATOR)
    assert info.value.message_dict == {"creator": [OTHER_CREATOR]}
    assert not Repository.objects.exists()
    assert Tenant.objects.get(pk=tenant.pk).repository_count == 0


def test_services_accept_a_creator_of_the_same_tenant(owner, tenant):
    namespace = services.namespace_create(name="team", tenant=tenant, creator=owner, actor=OPERATOR)
    repository = services.repository_create(
        namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR
    )
    assert (namespace.creator, repository.creator) == (owner, owner)


@pytest.mark.parametrize("model", [NamespacePermission, RepositoryPermission])
def test_grant_clean_refuses_another_tenant(namespace, stranger, model):
    repository = services.repository_create(namespace=namespace, name="web", is_public=False, actor=OPERATOR)
    target = {"namespace": namespace} if model is NamespacePermission else {"repository": repository}
    with pytest.raises(ValidationError) as info:
        model(**target, user=stranger, level=PermissionLevel.READ).full_clean()
    assert info.value.message_dict == {"user": [OTHER_TENANT]}
