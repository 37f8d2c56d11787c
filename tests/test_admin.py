"""The admin site: same rules and messages as the API, tokens shown once, hashes never."""

import re

import pytest
from rest_framework.test import APIClient

from swr import names, services
from swr.choices import PermissionLevel
from swr.models import ApiToken, Namespace, NamespacePermission, Repository, User

from .helpers import OPERATOR, admin_action, admin_form, post

pytestmark = pytest.mark.django_db


def api_error_message(client, url, body):
    return post(client, url, body).json()["error_msg"]


@pytest.mark.parametrize("bad_name", ["Nginx", "-web", "a___b", "web/", "a" * 129, "caf\u00e9", "a b"])
def test_invalid_repository_name_gets_the_api_message(admin_client, api, namespace, bad_name):
    response = admin_client.post(
        "/admin/swr/repository/add/",
        admin_form(
            {"namespace": namespace.pk, "name": bad_name, "category": "other", "description": "", "is_public": "on"},
            permissions=[],
        ),
    )
    assert response.status_code == 200  # the form again, with the error
    api_message = api_error_message(
        api, "/v2/manage/namespaces/group/repos", {"repository": bad_name, "is_public": True}
    )
    assert api_message == f"Invalid image name: {names.REPOSITORY.problem(bad_name)}"
    assert response.context["adminform"].form.errors["name"] == [api_message]
    assert not Repository.objects.exists()


@pytest.mark.parametrize("bad_name", ["Group", "1group", "a/b", "a" * 65])
def test_invalid_namespace_name_gets_the_api_message(admin_client, api, tenant, bad_name):
    response = admin_client.post("/admin/swr/namespace/add/", _namespace_form(bad_name, tenant))
    assert response.status_code == 200
    api_message = api_error_message(api, "/v2/manage/namespaces", {"namespace": bad_name})
    assert response.context["adminform"].form.errors["name"] == [api_message]


def _namespace_form(name, tenant, creator=""):
    return admin_form({"name": name, "tenant": tenant.pk, "creator": creator}, repositories=[], permissions=[])


def test_namespace_created_in_admin_gives_its_creator_manage(admin_client, tenant, owner):
    response = admin_client.post("/admin/swr/namespace/add/", _namespace_form("team", tenant, owner.pk))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    namespace = Namespace.objects.get(name="team")
    assert NamespacePermission.objects.get(namespace=namespace).level == PermissionLevel.MANAGE


def test_duplicate_repository_in_admin(admin_client, namespace):
    Repository.objects.create(namespace=namespace, name="web", is_public=True)
    response = admin_client.post(
        "/admin/swr/repository/add/",
        admin_form({"namespace": namespace.pk, "name": "web", "category": "other", "description": ""}, permissions=[]),
    )
    assert response.status_code == 200
    assert "already exists in this organization" in response.content.decode()
    assert Repository.objects.count() == 1


def test_repository_created_in_admin_works_with_the_api(admin_client, namespace, api):
    response = admin_client.post(
        "/admin/swr/repository/add/",
        admin_form(
            {"namespace": namespace.pk, "name": "nginx/web", "category": "linux", "description": "", "is_public": "on"},
            permissions=[],
        ),
    )
    assert response.status_code == 302
    repository = Repository.objects.get()
    assert (repository.name, repository.category, repository.is_public) == ("nginx/web", "linux", True)
    again = post(api, "/v2/manage/namespaces/group/repos", {"repository": "nginx/web", "is_public": True})
    assert again.status_code == 409


def test_issue_token_action_shows_the_token_once(admin_client, owner):
    response = admin_action(admin_client, User, "issue_token", [owner.pk], follow=True)
    match = re.search(r"<code>(swr_[^<]+)</code>", response.content.decode())
    assert match, response.content.decode()
    raw = match.group(1)
    token = ApiToken.objects.get(user=owner)
    assert token.key_hash == ApiToken.hash_key(raw)
    # The token works against the API...
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=raw)
    response = post(client, "/v2/manage/namespaces", {"namespace": "x"})
    assert response.status_code == 201
    # ...and is not shown again.
    assert raw not in admin_client.get("/admin/swr/user/").content.decode()
    assert raw not in admin_client.get(f"/admin/swr/apitoken/{token.pk}/change/").content.decode()


def test_token_admin_never_shows_the_hash_and_can_revoke(admin_client, owner):
    token, _ = services.token_issue(user=owner, actor=OPERATOR)
    for url in ("/admin/swr/apitoken/", f"/admin/swr/apitoken/{token.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert token.key_hash not in page
        assert token.hint in page
    assert admin_client.get("/admin/swr/apitoken/add/").status_code == 403
    admin_action(admin_client, ApiToken, "revoke", [token.pk])
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_repository_changelist_filters_and_search(admin_client, namespace):
    Repository.objects.create(namespace=namespace, name="busybox", is_public=True, category="linux")
    Repository.objects.create(namespace=namespace, name="mysql", is_public=False, category="database")
    response = admin_client.get(
        "/admin/swr/repository/",
        {"category__exact": "linux", "is_public__exact": "1", "namespace__id__exact": namespace.pk, "q": "busy"},
    )
    assert response.status_code == 200
    assert [r.name for r in response.context["cl"].result_list] == ["busybox"]
    response = admin_client.get("/admin/swr/repository/", {"q": "sql"})
    assert [r.name for r in response.context["cl"].result_list] == ["mysql"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/swr/tenant/",
        "/admin/swr/user/",
        "/admin/swr/namespace/",
        "/admin/swr/repository/",
        "/admin/swr/namespacepermission/",
        "/admin/swr/apitoken/",
        "/admin/swr/namespace/add/",
        "/admin/swr/repository/add/",
        "/admin/swr/user/add/",
    ],
)
def test_admin_pages_open(admin_client, namespace, url):
    assert admin_client.get(url).status_code == 200


def test_namespace_page_shows_its_repositories_inline(admin_client, namespace):
    Repository.objects.create(namespace=namespace, name="busybox", is_public=True)
    page = admin_client.get(f"/admin/swr/namespace/{namespace.pk}/change/").content.decode()
    assert "busybox" in page


def test_names_cannot_be_changed_once_created(admin_client, namespace):
    """Spec section 5: the name is not changeable (pull addresses are built from it)."""
    repository = Repository.objects.create(namespace=namespace, name="web", is_public=True)
    form = admin_client.get(f"/admin/swr/repository/{repository.pk}/change/").context["adminform"].form
    assert "name" not in form.fields
    assert "namespace" not in form.fields
    response = admin_client.post(
        f"/admin/swr/repository/{repository.pk}/change/",
        admin_form({"name": "renamed", "category": "lang", "description": "changed", "is_public": ""}, permissions=[]),
    )
    assert response.status_code == 302
    repository.refresh_from_db()
    assert (repository.name, repository.category, repository.is_public) == ("web", "lang", False)
    form = admin_client.get(f"/admin/swr/namespace/{namespace.pk}/change/").context["adminform"].form
    assert "name" not in form.fields


def test_admin_shows_its_message_after_the_redirect_and_the_api_sets_no_cookie(admin_client, api, namespace):
    """Django's message middleware: the admin stores a message on one request and shows it on the next (the
    redirect); an API request stores none, and its answer sets no cookie."""
    response = admin_client.post(
        "/admin/swr/repository/add/",
        admin_form(
            {"namespace": namespace.pk, "name": "from-admin", "category": "other", "description": ""}, permissions=[]
        ),
        follow=True,
    )
    assert response.redirect_chain
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert len(shown) == 1
    assert "from-admin" in shown[0]
    assert "was added successfully" in shown[0]
    answer = post(api, "/v2/manage/namespaces/group/repos", {"repository": "from-api", "is_public": False})
    assert answer.status_code == 201
    assert "Set-Cookie" not in answer.headers
    assert not answer.cookies
