"""Nobody grants above their own effective level on an object (spec section 6, 403 SVCSTG.SWR.4039002).

The example of issue 11: a user with edit (3) on an organization granted himself manage (7) on a
repository of it, and then deleted the repository. Its siblings: grants to others, raising a grant by
PATCH, namespace and repository grants, and grants above the caller's level that the caller would
lower or remove.
"""

import pytest

from swr import policy, services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, Repository, RepositoryPermission

from .helpers import OPERATOR, assert_swr_error, grant_entry, send

pytestmark = pytest.mark.django_db

READ, EDIT, MANAGE = 1, 3, 7
NS_ACCESS = "/v2/manage/namespaces/group/access"
REPO = "/v2/manage/namespaces/group/repos/nginx$web"
REPO_ACCESS = f"{REPO}/access"


@pytest.fixture
def web(namespace, owner):
    return services.repository_create(
        namespace=namespace, name="nginx/web", is_public=False, creator=owner, actor=OPERATOR
    )


@pytest.fixture
def editor(make_user, tenant, namespace):
    """bob: edit (3) on organization 'group', nothing else."""
    bob = make_user("bob", tenant)
    NamespacePermission.objects.create(namespace=namespace, user=bob, level=EDIT)
    return bob


@pytest.fixture
def carol(make_user, tenant):
    return make_user("carol", tenant)


def repo_grants():
    return {(g.user.username, g.level) for g in RepositoryPermission.objects.select_related("user")}


def test_editor_cannot_grant_himself_manage_and_delete_the_repository(web, editor, client_for):
    """The example of issue 11, step by step: the grant is refused, so the delete is refused too."""
    bob = client_for(editor)
    body = assert_swr_error(send(bob, "post", REPO_ACCESS, [grant_entry(editor, MANAGE)]), 403, "SVCSTG.SWR.4039002")
    assert body["error_msg"] == (
        "You hold edit (3) on repository 'nginx/web': nobody grants above their own level, "
        "so you cannot give manage (7) to user 'bob'."
    )
    assert body["details"] == [{"field": "auth", "error_msg": body["error_msg"]}]
    assert repo_grants() == set()
    assert_swr_error(bob.delete(REPO), 403, "SVCSTG.SWR.4039002")
    assert Repository.objects.filter(pk=web.pk).exists()


@pytest.mark.parametrize("whom", ["himself", "another user"])
def test_editor_cannot_grant_manage_on_a_repository_by_post(web, editor, carol, client_for, whom):
    holder = editor if whom == "himself" else carol
    response = send(client_for(editor), "post", REPO_ACCESS, [grant_entry(holder, MANAGE)])
    assert_swr_error(response, 403, "SVCSTG.SWR.4039002")
    assert repo_grants() == set()


@pytest.mark.parametrize("whom", ["himself", "another user"])
@pytest.mark.parametrize("held", [READ, EDIT])
def test_editor_cannot_raise_a_grant_to_manage_by_patch(web, editor, carol, client_for, whom, held):
    holder = editor if whom == "himself" else carol
    RepositoryPermission.objects.create(repository=web, user=holder, level=held)
    response = send(client_for(editor), "patch", REPO_ACCESS, [grant_entry(holder, MANAGE)])
    body = assert_swr_error(response, 403, "SVCSTG.SWR.4039002")
    assert "nobody grants above their own level" in body["error_msg"]
    assert repo_grants() == {(holder.username, held)}


@pytest.mark.parametrize("whom", ["himself", "another user"])
@pytest.mark.parametrize("level", [READ, EDIT])
def test_editor_may_grant_up_to_his_own_level(web, editor, carol, client_for, whom, level):
    """The rule takes nothing away that the permission table gives: an editor grants read and edit."""
    holder = editor if whom == "himself" else carol
    assert send(client_for(editor), "post", REPO_ACCESS, [grant_entry(holder, level)]).status_code == 201
    assert repo_grants() == {(holder.username, level)}
    assert send(client_for(editor), "patch", REPO_ACCESS, [grant_entry(holder, READ)]).status_code == 201
    assert send(client_for(editor), "delete", REPO_ACCESS, [str(holder.pk)]).status_code == 204


def test_a_refused_entry_refuses_the_whole_request(web, editor, carol, make_user, tenant, client_for):
    """All or nothing (spec section 6): every entry above the caller's level is listed in details."""
    dave = make_user("dave", tenant)
    body = [grant_entry(carol, READ), grant_entry(dave, MANAGE), grant_entry(editor, MANAGE)]
    error = assert_swr_error(send(client_for(editor), "post", REPO_ACCESS, body), 403, "SVCSTG.SWR.4039002")
    assert [d["error_msg"].rsplit(" ", 1)[-1] for d in error["details"]] == ["'dave'.", "'bob'."]
    assert repo_grants() == set()


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_editor_cannot_lower_or_remove_a_grant_above_his_level(web, editor, carol, client_for, method):
    """A grant above the caller's level is out of reach: an editor cannot demote or remove a manager."""
    RepositoryPermission.objects.create(repository=web, user=carol, level=MANAGE)
    body = [grant_entry(carol, READ)] if method == "patch" else [str(carol.pk)]
    error = assert_swr_error(send(client_for(editor), method, REPO_ACCESS, body), 403, "SVCSTG.SWR.4039002")
    assert error["error_msg"] == (
        "User 'carol' holds manage (7) on repository 'nginx/web', above your edit (3): "
        "only someone who holds at least manage (7) there may change or remove that grant."
    )
    assert repo_grants() == {("carol", MANAGE)}


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_repository_manager_may_grant_and_remove_manage(web, make_user, tenant, carol, client_for, method):
    """Manage (7) held on the repository itself (read on the organization) reaches every level there."""
    manager = make_user("erin", tenant)
    RepositoryPermission.objects.create(repository=web, user=manager, level=MANAGE)
    if method != "post":
        RepositoryPermission.objects.create(repository=web, user=carol, level=MANAGE)
    body = [str(carol.pk)] if method == "delete" else [grant_entry(carol, MANAGE)]
    assert send(client_for(manager), method, REPO_ACCESS, body).status_code in (201, 204)


@pytest.mark.parametrize("caller", ["organization manager", "tenant admin"])
@pytest.mark.parametrize("method", ["post", "patch", "delete"])
@pytest.mark.parametrize("target", ["namespace", "repository"])
def test_managers_reach_every_level(web, owner, carol, make_user, tenant, client_for, caller, method, target):
    """Namespace grants need manage (7), the top level: the rule never refuses those who may change them."""
    user = owner if caller == "organization manager" else make_user("root", tenant, is_tenant_admin=True)
    url, model, obj = (NS_ACCESS, NamespacePermission, {"namespace": web.namespace})
    if target == "repository":
        url, model, obj = (REPO_ACCESS, RepositoryPermission, {"repository": web})
    if method != "post":
        model.objects.create(**obj, user=carol, level=MANAGE)
    body = [str(carol.pk)] if method == "delete" else [grant_entry(carol, MANAGE)]
    assert send(client_for(user), method, url, body).status_code in (201, 204)


# The rule itself, as a table: (the caller's effective level, the level held now, the level asked for) -> allowed.
RULE = [
    (EDIT, None, READ, True),
    (EDIT, None, EDIT, True),
    (EDIT, None, MANAGE, False),
    (EDIT, READ, EDIT, True),
    (EDIT, EDIT, MANAGE, False),
    (EDIT, MANAGE, READ, False),
    (EDIT, MANAGE, None, False),
    (EDIT, EDIT, None, True),
    (MANAGE, MANAGE, None, True),
    (MANAGE, None, MANAGE, True),
    (READ, None, READ, True),
    (READ, None, EDIT, False),
]


@pytest.mark.parametrize(
    ("own", "held", "granted", "allowed"), RULE, ids=[f"own {r[0]} held {r[1]} to {r[2]}" for r in RULE]
)
def test_require_grants_rule(namespace, make_user, tenant, own, held, granted, allowed):
    caller, holder = make_user("caller", tenant), make_user("holder", tenant)
    NamespacePermission.objects.create(namespace=namespace, user=caller, level=own)
    if allowed:
        policy.require_grants(caller, namespace, None, [(holder, held, granted)])
    else:
        with pytest.raises(policy.PermissionTooLow):
            policy.require_grants(caller, namespace, None, [(holder, held, granted)])


def test_effective_level_on_a_repository_is_the_higher_grant(web, editor):
    assert policy.effective_level(editor, web.namespace, web) == PermissionLevel.EDIT
    RepositoryPermission.objects.create(repository=web, user=editor, level=MANAGE)
    web = Repository.objects.get(pk=web.pk)
    assert policy.effective_level(editor, web.namespace, web) == PermissionLevel.MANAGE
