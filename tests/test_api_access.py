"""/access of organizations and repositories (spec section 6): grant, show, change, remove; all or nothing."""

import pytest

from swr import services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, RepositoryPermission

from .helpers import OPERATOR, assert_swr_error, grant_entry, send

pytestmark = pytest.mark.django_db

NS_ACCESS = "/v2/manage/namespaces/group/access"
REPO_ACCESS = "/v2/manage/namespaces/group/repos/nginx$web/access"


@pytest.fixture
def team(make_user, tenant):
    return [make_user(name, tenant) for name in ("bob", "carol", "dave")]


@pytest.fixture
def web(namespace, owner):
    return services.repository_create(
        namespace=namespace, name="nginx/web", is_public=False, creator=owner, actor=OPERATOR
    )


@pytest.mark.parametrize("target", ["namespace", "repository"])
class TestGrants:
    def url(self, target):
        return NS_ACCESS if target == "namespace" else REPO_ACCESS

    def grants(self, target):
        model = NamespacePermission if target == "namespace" else RepositoryPermission
        return {(p.user.username, p.level) for p in model.objects.select_related("user") if p.user.username != "alice"}

    def test_grant_show_change_remove(self, api, web, team, owner, target):
        bob, carol, _ = team
        url = self.url(target)
        response = send(api, "post", url, [grant_entry(bob, 1), grant_entry(carol, 3)])
        assert (response.status_code, response.json()) == (201, {})
        assert self.grants(target) == {("bob", 1), ("carol", 3)}

        shown = api.get(url).json()
        assert shown["self_auth"] == {"user_id": str(owner.pk), "user_name": "alice", "auth": 7}
        assert sorted(a["user_name"] for a in shown["others_auths"]) == ["bob", "carol"]
        assert {a["user_name"]: a["auth"] for a in shown["others_auths"]} == {"bob": 1, "carol": 3}
        assert shown["name"] == ("group" if target == "namespace" else "nginx/web")
        assert shown["creator_name"] == "alice"

        response = send(api, "patch", url, [grant_entry(bob, 7)])
        assert (response.status_code, response.json()) == (201, {})
        assert self.grants(target) == {("bob", 7), ("carol", 3)}

        response = send(api, "delete", url, [str(bob.pk), str(carol.pk)])
        assert response.status_code == 204
        assert self.grants(target) == set()

    def test_post_is_all_or_nothing_on_conflict(self, api, web, team, target):
        bob, carol, dave = team
        send(api, "post", self.url(target), [grant_entry(bob, 1)])
        response = send(
            api, "post", self.url(target), [grant_entry(carol, 1), grant_entry(bob, 3), grant_entry(dave, 1)]
        )
        body = assert_swr_error(response, 409, "SVCSTG.SWR.4090076")
        assert "bob" in body["error_msg"]
        assert self.grants(target) == {("bob", 1)}

    def test_patch_is_all_or_nothing_when_one_is_missing(self, api, web, team, target):
        bob, carol, _ = team
        send(api, "post", self.url(target), [grant_entry(bob, 1)])
        response = send(api, "patch", self.url(target), [grant_entry(bob, 7), grant_entry(carol, 3)])
        body = assert_swr_error(response, 404, "SVCSTG.SWR.4040078")
        assert "carol" in body["error_msg"]
        assert self.grants(target) == {("bob", 1)}

    def test_delete_is_all_or_nothing_when_one_is_missing(self, api, web, team, target):
        bob, carol, _ = team
        send(api, "post", self.url(target), [grant_entry(bob, 1)])
        assert_swr_error(send(api, "delete", self.url(target), [str(bob.pk), str(carol.pk)]), 404, "SVCSTG.SWR.4040078")
        assert self.grants(target) == {("bob", 1)}

    @pytest.mark.parametrize("auth", [0, 2, 4, 8, -1, 100])
    def test_invalid_level(self, api, web, team, target, auth):
        body = assert_swr_error(
            send(api, "post", self.url(target), [grant_entry(team[0], auth)]), 400, "SVCSTG.SWR.4001066"
        )
        assert "7" in body["error_msg"]
        assert self.grants(target) == set()

    def test_user_of_another_tenant_cannot_be_granted(self, api, web, make_user, other_tenant, target):
        stranger = make_user("mallory", other_tenant)
        body = assert_swr_error(
            send(api, "post", self.url(target), [grant_entry(stranger, 1)]), 400, "SVCSTG.SWR.4000014"
        )
        assert "same tenant" in body["error_msg"]
        assert self.grants(target) == set()

    @pytest.mark.parametrize(
        "body",
        [
            [],
            {},
            "x",
            [{"user_id": "1"}],
            [{"auth": 1}],
            [{"user_id": "nobody", "auth": 1}],
            [{"user_id": "999999", "auth": 1}],
        ],
    )
    def test_bad_bodies(self, api, web, team, target, body):
        response = send(api, "post", self.url(target), body)
        assert response.status_code == 400
        assert response.json()["error_code"] in ("SVCSTG.SWR.4000014", "SVCSTG.SWR.4001066")

    def test_same_user_twice_in_one_request(self, api, web, team, target):
        bob = team[0]
        assert_swr_error(
            send(api, "post", self.url(target), [grant_entry(bob, 1), grant_entry(bob, 3)]), 400, "SVCSTG.SWR.4000014"
        )

    def test_form_of_delete_body(self, api, web, team, target):
        bob = team[0]
        send(api, "post", self.url(target), [grant_entry(bob, 1)])
        assert_swr_error(send(api, "delete", self.url(target), {"user_id": str(bob.pk)}), 400, "SVCSTG.SWR.4000014")


class TestEffectOfGrants:
    def test_namespace_grant_lets_the_user_in(self, api, namespace, team, client_for):
        bob = team[0]
        bob_client = client_for(bob)
        create = {"repository": "x", "is_public": False}
        assert send(bob_client, "post", "/v2/manage/namespaces/group/repos", create).status_code == 403
        send(api, "post", NS_ACCESS, [grant_entry(bob, 3)])
        assert send(bob_client, "post", "/v2/manage/namespaces/group/repos", create).status_code == 201

    def test_repository_manage_grant_allows_delete_of_that_repository(self, api, web, team, client_for):
        bob = team[0]
        bob_client = client_for(bob)
        assert bob_client.delete("/v2/manage/namespaces/group/repos/nginx$web").status_code == 403
        send(api, "post", REPO_ACCESS, [grant_entry(bob, 7)])
        assert bob_client.delete("/v2/manage/namespaces/group/repos/nginx$web").status_code == 204

    def test_repository_grant_makes_the_namespace_visible_with_mode_visible(self, api, web, team, client_for):
        bob = team[0]
        send(api, "post", REPO_ACCESS, [grant_entry(bob, 1)])
        bob_client = client_for(bob)
        assert bob_client.get("/v2/manage/namespaces").json() == {"namespaces": []}
        listed = bob_client.get("/v2/manage/namespaces?filter=mode::visible").json()["namespaces"]
        assert [n["name"] for n in listed] == ["group"]

    def test_repository_grant_never_lowers_the_namespace_level(self, api, web, team, client_for):
        bob = team[0]
        send(api, "post", NS_ACCESS, [grant_entry(bob, 7)])
        send(api, "post", REPO_ACCESS, [grant_entry(bob, 1)])
        assert client_for(bob).delete("/v2/manage/namespaces/group/repos/nginx$web").status_code == 204

    def test_edit_on_namespace_may_manage_repository_grants(self, api, web, team, client_for):
        bob, carol, _ = team
        send(api, "post", NS_ACCESS, [grant_entry(bob, PermissionLevel.EDIT)])
        assert send(client_for(bob), "post", REPO_ACCESS, [grant_entry(carol, 1)]).status_code == 201
        assert send(client_for(bob), "post", NS_ACCESS, [grant_entry(carol, 1)]).status_code == 403
