"""Admin polish (issue 11): the admin's lockout page, the site's look, and races in the admin's write paths.

Races are simulated sequentially, at the exact point where another request would act: a receiver of one
of Django's model signals (the admin's LogEntry saved just before the delete, a row instantiated or saved
by the view) calls the services as the other request would, once.
"""

import contextlib
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.messages import get_messages
from django.db.models import signals

from swr import services
from swr.choices import PermissionLevel
from swr.models import Namespace, NamespacePermission, Repository, User

from .helpers import OPERATOR, PASSWORD, admin_action, admin_form, admin_login, assert_swr_error, login


@contextlib.contextmanager
def meanwhile(signal, sender, action, when=lambda **kwargs: True):
    """Run ``action()`` once, the first time ``signal`` is sent by ``sender`` (and ``when(**kwargs)``)."""
    done = []

    def receiver(**kwargs):
        if not done and when(**kwargs):
            done.append(True)
            action()

    signal.connect(receiver, sender=sender, weak=False)
    try:
        yield done
    finally:
        signal.disconnect(receiver, sender=sender)
    assert done, "the simulated request never ran"


def before_the_delete(action):
    """Just before the admin deletes: when its LogEntry of the deletion is saved."""
    return meanwhile(
        signals.post_save, LogEntry, action, when=lambda instance, **kwargs: instance.action_flag == DELETION
    )


def shown(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


# 1. The admin's login form, locked out.


def assert_locked_page(response, username):
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert {"admin/login_locked.html", "admin/base_site.html"} <= {t.name for t in response.templates}
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 15 * 60
    page = response.content.decode()
    assert f"User name <strong>{username}</strong> is locked" in page
    assert f"for {wait} more seconds (about {-(-wait // 60)} minutes)" in page
    assert f"Try again in {wait} seconds" in page  # login_throttled()'s message, as the API says it
    assert "SWR registry administration" in page  # the admin's look
    assert "error_code" not in page


@pytest.mark.django_db
class TestAdminLockoutPage:
    def test_the_admin_login_form_answers_an_html_page(self, carol):
        assert [admin_login("carol", "wrong").status_code for _ in range(4)] == [200] * 4
        assert_locked_page(admin_login("carol", "wrong"), "carol")
        assert_locked_page(admin_login("carol", PASSWORD), "carol")  # the right password too

    def test_the_wait_shrinks_with_time(self, carol):
        for _ in range(5):
            admin_login("carol", "wrong")
        for attempt in AccessAttempt.objects.all():
            AccessAttempt.objects.filter(pk=attempt.pk).update(
                attempt_time=attempt.attempt_time - timedelta(minutes=14)
            )
        response = admin_login("carol", PASSWORD)
        assert_locked_page(response, "carol")
        assert 50 <= int(response["Retry-After"]) <= 60

    def test_the_api_still_answers_the_error_body(self, carol):
        for _ in range(5):
            admin_login("carol", "wrong")
        response = login("carol", PASSWORD)
        body = assert_swr_error(response, 429, "SVCSTG.SWR.4290001")
        assert f"Try again in {response['Retry-After']} seconds" in body["error_msg"]
        # ...and the other way round: locked through the API, the admin's form shows the page.
        assert_locked_page(admin_login("carol", PASSWORD), "carol")


# 2. The admin's look.


@pytest.mark.django_db
class TestAdminLook:
    def test_header_title_and_index(self, admin_client):
        page = admin_client.get("/admin/").content.decode()
        assert "Django administration" not in page
        assert "Django site admin" not in page
        assert "SWR registry administration" in page
        assert "<title>Tenants, users, organizations and repositories | SWR registry admin</title>" in page

    def test_view_site_leads_to_the_api_documentation(self, admin_client, client):
        page = admin_client.get("/admin/").content.decode()
        assert '<a href="/docs/">View site</a>' in page
        docs = client.get("/docs/")
        assert docs.status_code == 200
        assert docs["Content-Type"].startswith("text/html")

    def test_tenant_comes_right_after_the_personal_info(self, admin_client, owner):
        def titles(url):
            return [fieldset.name for fieldset in admin_client.get(url).context["adminform"]]

        assert titles(f"/admin/swr/user/{owner.pk}/change/") == [
            None, "Personal info", "Tenant", "Permissions", "Important dates"
        ]  # fmt: skip
        assert titles("/admin/swr/user/add/") == [None, "Tenant"]


# 3. Races in the admin's delete and change paths.


@pytest.fixture
def repository(namespace, owner):
    return services.repository_create(namespace=namespace, name="web", is_public=True, creator=owner, actor=OPERATOR)


@pytest.mark.django_db
class TestDeleteRaces:
    def test_organization_filled_meanwhile_on_its_delete_page(self, admin_client, namespace):
        def other_request():
            services.repository_create(namespace=namespace, name="web", is_public=True, actor=OPERATOR)

        url = f"/admin/swr/namespace/{namespace.pk}/delete/"
        with before_the_delete(other_request):
            response = admin_client.post(url, {"post": "yes"})
        assert (response.status_code, response["Location"]) == (302, url)
        assert shown(response) == ["Organization 'group' still holds image repositories; delete them first."]
        assert Namespace.objects.filter(pk=namespace.pk).exists()

    def test_repository_deleted_meanwhile_on_its_delete_page(self, admin_client, repository):
        url = f"/admin/swr/repository/{repository.pk}/delete/"
        with before_the_delete(lambda: services.repository_delete(repository=repository, actor=OPERATOR)):
            response = admin_client.post(url, {"post": "yes"})
        assert (response.status_code, response["Location"]) == (302, url)
        assert shown(response) == ["Image repository 'web' not found in organization 'group'."]

    def test_delete_selected_organization_filled_meanwhile(self, admin_client, namespace):
        def other_request():
            services.repository_create(namespace=namespace, name="web", is_public=True, actor=OPERATOR)

        with before_the_delete(other_request):
            response = admin_action(admin_client, Namespace, "delete_selected", [namespace.pk], post="yes")
        assert response.status_code == 302
        assert shown(response) == [
            "Not deleted: Organization 'group' still holds image repositories; delete them first."
        ]
        assert Namespace.objects.filter(pk=namespace.pk).exists()

    def test_delete_selected_repositories_one_deleted_meanwhile(self, admin_client, namespace, repository):
        """Two selected: while the admin deletes the first, another request deletes the second."""
        second = services.repository_create(namespace=namespace, name="api", is_public=True, actor=OPERATOR)
        first = []

        def other_request():
            services.repository_delete(repository=second if first[0] == repository.pk else repository, actor=OPERATOR)

        def deleted(instance, **kwargs):
            first.append(instance.pk)
            return True

        with meanwhile(signals.post_delete, Repository, other_request, when=deleted):
            response = admin_action(admin_client, Repository, "delete_selected", [repository.pk, second.pk], post="yes")
        assert response.status_code == 302
        gone = "api" if first[0] == repository.pk else "web"
        assert shown(response) == [
            "Deleted 1 of 2.",
            f"Not deleted: Image repository '{gone}' not found in organization 'group'.",
        ]
        assert not Repository.objects.exists()
        namespace.tenant.refresh_from_db()
        assert services.quota_usage(namespace.tenant)["repository"] == 0

    def test_the_delete_page_still_works(self, admin_client, namespace):
        response = admin_client.post(f"/admin/swr/namespace/{namespace.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not Namespace.objects.exists()


@pytest.mark.django_db
class TestChangeRaces:
    def test_organization_deleted_meanwhile_is_not_saved_again(self, admin_client, namespace, owner, make_user, tenant):
        """A plain save() would insert the deleted organization again, past the quota and without grants."""
        bob = make_user("bob", tenant)
        url = f"/admin/swr/namespace/{namespace.pk}/change/"
        data = admin_form(
            {"creator": owner.pk},
            repositories=[],
            permissions=[{"user": bob.pk, "level": PermissionLevel.READ}],
        )
        with meanwhile(
            signals.post_init, Namespace, lambda: services.namespace_delete(namespace=namespace, actor=OPERATOR)
        ):
            response = admin_client.post(url, data)
        assert (response.status_code, response["Location"]) == (302, url)
        assert shown(response) == ["Organization 'group' was deleted by another request meanwhile: nothing was saved."]

    def test_organization_deleted_before_the_form_is_posted(self, admin_client, namespace, owner):
        url = f"/admin/swr/namespace/{namespace.pk}/change/"
        assert admin_client.get(url).status_code == 200
        services.namespace_delete(namespace=namespace, actor=OPERATOR)
        response = admin_client.post(url, admin_form({"creator": owner.pk}, repositories=[], permissions=[]))
        assert response.status_code == 302
        assert "doesn’t exist. Perhaps it was deleted?" in shown(response)[0]
        assert not Namespace.objects.exists()

    def test_repository_deleted_meanwhile_is_not_saved_again(self, admin_client, repository):
        url = f"/admin/swr/repository/{repository.pk}/change/"
        data = admin_form({"category": "other", "description": "new", "is_public": "on"}, permissions=[])
        with meanwhile(
            signals.post_init, Repository, lambda: services.repository_delete(repository=repository, actor=OPERATOR)
        ):
            response = admin_client.post(url, data)
        assert (response.status_code, response["Location"]) == (302, url)
        assert shown(response) == [
            "Repository 'group/web' was deleted by another request meanwhile: nothing was saved."
        ]


@pytest.mark.django_db(transaction=True)
def test_inline_grant_for_a_user_deleted_meanwhile(admin_client, namespace, owner, make_user, tenant):
    """The database refuses the grant at commit (its user is gone): a message and the form, not a 500."""
    bob = make_user("bob", tenant)
    url = f"/admin/swr/namespace/{namespace.pk}/change/"
    data = admin_form(
        {"creator": owner.pk}, repositories=[], permissions=[{"user": bob.pk, "level": PermissionLevel.READ}]
    )
    with meanwhile(signals.post_save, Namespace, lambda: User.objects.filter(pk=bob.pk).delete()):
        response = admin_client.post(url, data)
    assert (response.status_code, response["Location"]) == (302, url)
    shown_next = [str(message) for message in admin_client.get(url).context["messages"]]
    assert shown_next == [
        "Nothing was saved: a row this form refers to was deleted or changed by another request meanwhile. "
        "Check the form and save again."
    ]
    assert list(NamespacePermission.objects.values_list("user__username", flat=True)) == ["alice"]
