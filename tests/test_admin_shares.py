"""The admin site's shares and temporary logins (issue 15, must-have 7): listed with their expiry; a temporary
login is revoked by deleting it, through the service (audited, and the registry refuses it at once); the secret's
hash is never shown nor usable as a filter."""

from datetime import timedelta

import pytest
from django.utils import timezone

from swr import services
from swr.api.registry.auth import login
from swr.choices import TemporaryLoginKind
from swr.distribution.errors import Unauthorized
from swr.models import AuditRecord, RepositoryShare, TemporaryLogin

from .helpers import OPERATOR, admin_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def temporary(owner):
    return services.temporary_login_issue(
        user=owner, kind=TemporaryLoginKind.SECRET, lifetime=timedelta(hours=1), actor=OPERATOR
    )


def test_temporary_logins_listed_with_expiry_never_the_hash(admin_client, temporary):
    login_row, secret = temporary
    for url in ("/admin/swr/temporarylogin/", f"/admin/swr/temporarylogin/{login_row.pk}/change/"):
        page = admin_client.get(url)
        assert page.status_code == 200
        text = page.content.decode()
        assert login_row.identifier in text
        assert login_row.secret_hash not in text
        assert secret not in text
    listed = admin_client.get("/admin/swr/temporarylogin/").content.decode()
    assert str(login_row.expires_at.year) in listed
    assert admin_client.get("/admin/swr/temporarylogin/add/").status_code == 403
    oracle = admin_client.get(f"/admin/swr/temporarylogin/?secret_hash__startswith={login_row.secret_hash[:4]}")
    assert oracle.status_code == 400


def test_deleting_a_temporary_login_revokes_it(admin_client, rf, temporary, owner):
    login_row, secret = temporary
    request = rf.get("/")
    assert login(request, f"acme@{login_row.identifier}", secret) == owner
    answer = admin_action(admin_client, TemporaryLogin, "delete_selected", [login_row.pk], post="yes")
    assert answer.status_code == 302
    assert not TemporaryLogin.objects.exists()
    assert AuditRecord.objects.filter(action="temporarylogin.delete", source="admin").count() == 1
    with pytest.raises(Unauthorized, match="Authentication failed"):
        login(request, f"acme@{login_row.identifier}", secret)


def test_an_expired_temporary_login_is_refused(rf, temporary):
    login_row, secret = temporary
    TemporaryLogin.objects.filter(pk=login_row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Unauthorized):
        login(rf.get("/"), f"acme@{login_row.identifier}", secret)


def test_a_secret_login_under_the_bearertoken_name_is_refused(rf, temporary):
    login_row, secret = temporary
    with pytest.raises(Unauthorized):
        login(rf.get("/"), f"bearertoken@{login_row.identifier}", secret)


def test_shares_listed_with_deadline_and_stopped_by_delete(admin_client, namespace, owner, other_tenant):
    web = services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)
    deadline = timezone.now() + timedelta(days=3)
    share = services.share_create(
        repository=web, access_domain=other_tenant, deadline=deadline, creator=owner, actor=OPERATOR
    )
    listed = admin_client.get("/admin/swr/repositoryshare/")
    assert listed.status_code == 200
    text = listed.content.decode()
    assert "globex" in text
    assert "group/web" in text
    assert str(deadline.year) in text
    assert admin_client.get(f"/admin/swr/repositoryshare/{share.pk}/change/").status_code == 200
    assert admin_client.get("/admin/swr/repositoryshare/add/").status_code == 403
    answer = admin_action(admin_client, RepositoryShare, "delete_selected", [share.pk], post="yes")
    assert answer.status_code == 302
    assert not RepositoryShare.objects.exists()
    assert AuditRecord.objects.filter(action="repository.share.delete", source="admin").count() == 1
