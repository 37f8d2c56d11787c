"""The database guards shares and temporary logins (spec sections 11 and 12): CHECK and UNIQUE constraints refuse
what no code path should write, whatever writes it; the models' full_clean() says the same in words."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from swr import services
from swr.models import RepositoryShare, TemporaryLogin

from .helpers import OPERATOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(namespace, owner):
    return services.repository_create(namespace=namespace, name="web", is_public=False, creator=owner, actor=OPERATOR)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"permit": "write"}, id="permit-not-read"),
        pytest.param({"description": "x" * 1001}, id="description-1001"),
    ],
)
def test_share_checks(web, other_tenant, values):
    # PostgreSQL's varchar(1000) refuses a longer description before the CHECK does (DataError).
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        RepositoryShare.objects.create(repository=web, access_domain=other_tenant, **values)
    with pytest.raises(ValidationError):
        RepositoryShare(repository=web, access_domain=other_tenant, **values).full_clean()


def test_one_share_per_repository_and_tenant(web, other_tenant):
    RepositoryShare.objects.create(repository=web, access_domain=other_tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        RepositoryShare.objects.create(repository=web, access_domain=other_tenant)


def test_a_repository_is_not_shared_with_its_own_tenant(web, tenant):
    with pytest.raises(ValidationError, match="another tenant"):
        RepositoryShare(repository=web, access_domain=tenant).full_clean()


def test_shares_go_with_their_repository(web, other_tenant):
    RepositoryShare.objects.create(repository=web, access_domain=other_tenant)
    services.repository_delete(repository=web, actor=OPERATOR)
    assert not RepositoryShare.objects.exists()


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"kind": "password"}, id="kind"),
        pytest.param({"secret_hash": "not-a-hash"}, id="hash-not-hex"),
        pytest.param({"secret_hash": "A" * 64}, id="hash-upper-case"),
    ],
)
def test_temporary_login_checks(owner, values):
    row = {"user": owner, "identifier": "a" * 32, "secret_hash": "0" * 64, "kind": "secret"} | values
    with pytest.raises(IntegrityError), transaction.atomic():
        TemporaryLogin.objects.create(expires_at=timezone.now() + timedelta(hours=1), **row)


def test_temporary_login_identifiers_are_unique(owner):
    row = {"user": owner, "identifier": "b" * 32, "secret_hash": "0" * 64, "kind": "secret"}
    TemporaryLogin.objects.create(expires_at=timezone.now(), **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        TemporaryLogin.objects.create(expires_at=timezone.now(), **row)
