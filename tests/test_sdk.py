"""The official Huawei Cloud SDK (huaweicloudsdkswr) against a live server, with AK/SK credentials.

Code written for SWR must run against this server unchanged: the SDK signs
every request with SDK-HMAC-SHA256, sends it over HTTP to gunicorn, and reads
the answers into its own models.
"""

import uuid
from datetime import UTC, datetime

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.retry.backoff_strategy import BackoffStrategies
from huaweicloudsdkswr.v2 import SwrClient
from huaweicloudsdkswr.v2 import model as m

from swr import services
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission

from .helpers import OPERATOR

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def sdk_client(server, user):
    key, secret_key = services.access_key_issue(user=user, actor=OPERATOR)
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    credentials = BasicCredentials(key.access_key, secret_key, user.tenant.project_id)
    return (
        SwrClient.new_builder().with_http_config(config).with_credentials(credentials).with_endpoints([server]).build()
    )


@pytest.fixture
def sdk(server, owner):
    return sdk_client(server, owner)


def test_namespace_and_repository_lifecycle(sdk, owner, make_user, tenant):
    sdk.create_namespace(m.CreateNamespaceRequest(body=m.CreateNamespaceRequestBody(namespace="sdk-org")))
    assert Namespace.objects.get(name="sdk-org").creator == owner

    shown = sdk.show_namespace(m.ShowNamespaceRequest(namespace="sdk-org"))
    assert (shown.name, shown.creator_name, shown.auth) == ("sdk-org", "alice", 7)
    listed = sdk.list_namespaces(m.ListNamespacesRequest(namespace="sdk"))
    assert [n.name for n in listed.namespaces] == ["sdk-org"]

    body = m.CreateRepoRequestBody(repository="nginx/web", category="linux", description="by the SDK", is_public=False)
    sdk.create_repo(m.CreateRepoRequest(namespace="sdk-org", body=body))
    repository = Repository.objects.get(name="nginx/web")
    assert (repository.category, repository.description, repository.is_public) == ("linux", "by the SDK", False)

    details = sdk.list_repos_details(m.ListReposDetailsRequest(namespace="sdk-org", order_column="name", limit="10"))
    assert [(r.namespace, r.name, r.is_public) for r in details.body] == [("sdk-org", "nginx/web", False)]
    assert details.content_range == "0-1/1"

    one = sdk.show_repository(m.ShowRepositoryRequest(namespace="sdk-org", repository="nginx$web"))
    assert (one.name, one.category, one.creator_name) == ("nginx/web", "linux", "alice")

    update = m.UpdateRepoRequestBody(is_public=True, category="app_server", description="changed")
    sdk.update_repo(m.UpdateRepoRequest(namespace="sdk-org", repository="nginx$web", body=update))
    repository.refresh_from_db()
    assert (repository.is_public, repository.category, repository.description) == (True, "app_server", "changed")

    bob = make_user("bob", tenant)
    grant = [m.UserAuth(user_id=str(bob.pk), user_name="bob", auth=3)]
    sdk.create_namespace_auth(m.CreateNamespaceAuthRequest(namespace="sdk-org", body=grant))
    sdk.update_namespace_auth(
        m.UpdateNamespaceAuthRequest(
            namespace="sdk-org", body=[m.UserAuth(user_id=str(bob.pk), user_name="bob", auth=7)]
        )
    )
    access = sdk.show_namespace_auth(m.ShowNamespaceAuthRequest(namespace="sdk-org"))
    assert access.self_auth.auth == 7
    assert [(a.user_name, a.auth) for a in access.others_auths] == [("bob", 7)]
    sdk.delete_namespace_auth(m.DeleteNamespaceAuthRequest(namespace="sdk-org", body=[str(bob.pk)]))
    assert not NamespacePermission.objects.filter(user=bob).exists()

    repo_grant = [m.UserAuth(user_id=str(bob.pk), user_name="bob", auth=1)]
    sdk.create_user_repository_auth(
        m.CreateUserRepositoryAuthRequest(namespace="sdk-org", repository="nginx$web", body=repo_grant)
    )
    shown_access = sdk.show_user_repository_auth(
        m.ShowUserRepositoryAuthRequest(namespace="sdk-org", repository="nginx$web")
    )
    assert [(a.user_name, a.auth) for a in shown_access.others_auths] == [("bob", 1)]
    sdk.update_user_repository_auth(
        m.UpdateUserRepositoryAuthRequest(
            namespace="sdk-org", repository="nginx$web", body=[m.UserAuth(user_id=str(bob.pk), user_name="bob", auth=7)]
        )
    )
    assert RepositoryPermission.objects.get(user=bob).level == 7
    sdk.delete_user_repository_auth(
        m.DeleteUserRepositoryAuthRequest(namespace="sdk-org", repository="nginx$web", body=[str(bob.pk)])
    )
    assert not RepositoryPermission.objects.exists()

    quotas = sdk.list_quotas(m.ListQuotasRequest())
    assert {q.quota_key: q.used for q in quotas.quotas} == {"namespace": 1, "repository": 1}

    sdk.delete_repo(m.DeleteRepoRequest(namespace="sdk-org", repository="nginx$web"))
    assert not Repository.objects.exists()
    sdk.delete_namespaces(m.DeleteNamespacesRequest(namespace="sdk-org"))
    assert not Namespace.objects.exists()


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda sdk: sdk.show_namespace(m.ShowNamespaceRequest(namespace="nowhere")), 404, "SVCSTG.SWR.4040058"),
        (
            lambda sdk: sdk.create_namespace(
                m.CreateNamespaceRequest(body=m.CreateNamespaceRequestBody(namespace="Bad"))
            ),
            400,
            "SVCSTG.SWR.4001028",
        ),
        (
            lambda sdk: sdk.create_repo(
                m.CreateRepoRequest(namespace="group", body=m.CreateRepoRequestBody(repository="-x", is_public=True))
            ),
            400,
            "SVCSTG.SWR.4001029",
        ),
        (
            lambda sdk: sdk.create_namespace(
                m.CreateNamespaceRequest(body=m.CreateNamespaceRequestBody(namespace="group"))
            ),
            409,
            "SVCSTG.SWR.4090060",
        ),
        (lambda sdk: sdk.delete_namespaces(m.DeleteNamespacesRequest(namespace="theirs")), 403, "SVCSTG.SWR.4039001"),
    ],
    ids=["not found", "bad namespace name", "bad repository name", "conflict", "other tenant"],
)
def test_errors_carry_the_servers_error_code(sdk, namespace, other_tenant, call, status, code):
    services.namespace_create(name="theirs", tenant=other_tenant, actor=OPERATOR)
    with pytest.raises(ClientRequestException) as info:
        call(sdk)
    assert info.value.status_code == status
    assert info.value.error_code == code
    assert info.value.error_msg


def test_wrong_secret_key_is_refused(server, owner):
    key, _ = services.access_key_issue(user=owner, actor=OPERATOR)
    credentials = BasicCredentials(key.access_key, "w" * 40, owner.tenant.project_id)
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    client = (
        SwrClient.new_builder().with_http_config(config).with_credentials(credentials).with_endpoints([server]).build()
    )
    with pytest.raises(ClientRequestException) as info:
        client.list_namespaces(m.ListNamespacesRequest())
    assert (info.value.status_code, info.value.error_code) == (401, "SVCSTG.SWR.4010000")


def _date_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def test_changes_in_quick_succession_and_identical_ones_in_one_second(sdk, namespace):
    """Issue 11 must-have 4: each signature of a change is accepted once. Changes that differ (method, path,
    body) go through back to back; a change identical to one already accepted in the same second (X-Sdk-Date
    has one-second resolution, pinned here to make the second certain) is a replay: 401. A unique X-Request-Id
    header, which the SDK signs like every header, makes it a new request."""
    date = _date_now()
    create = m.CreateRepoRequest(namespace="group", body=m.CreateRepoRequestBody(repository="web", is_public=True))
    delete = m.DeleteRepoRequest(namespace="group", repository="web")
    sdk.create_repo_invoker(create).add_header("X-Sdk-Date", date).invoke()
    sdk.delete_repo_invoker(delete).add_header("X-Sdk-Date", date).invoke()
    with pytest.raises(ClientRequestException) as info:
        sdk.create_repo_invoker(create).add_header("X-Sdk-Date", date).invoke()
    assert (info.value.status_code, info.value.error_code) == (401, "SVCSTG.SWR.4010000")
    assert "the signature was already used" in info.value.error_msg
    assert not Repository.objects.exists()
    sdk.create_repo_invoker(create).add_header("X-Sdk-Date", date).add_header("X-Request-Id", uuid.uuid4().hex).invoke()
    assert Repository.objects.get().name == "web"

    # Unpinned, as an application calls it: distinct changes in a row all go through.
    sdk.create_namespace(m.CreateNamespaceRequest(body=m.CreateNamespaceRequestBody(namespace="quick")))
    sdk.create_repo(
        m.CreateRepoRequest(namespace="quick", body=m.CreateRepoRequestBody(repository="a", is_public=True))
    )
    sdk.create_repo(
        m.CreateRepoRequest(namespace="quick", body=m.CreateRepoRequestBody(repository="b", is_public=True))
    )
    sdk.delete_repo(m.DeleteRepoRequest(namespace="quick", repository="a"))
    sdk.delete_repo(m.DeleteRepoRequest(namespace="quick", repository="b"))
    sdk.delete_namespaces(m.DeleteNamespacesRequest(namespace="quick"))
    assert not Namespace.objects.filter(name="quick").exists()


def test_sdk_retry_after_a_server_error_goes_through(live_server, owner, namespace, monkeypatch):
    """The SDK's own retry (invoker.with_retry) re-signs each attempt; within one second the attempt is
    identical to the one that failed. A 5xx changed nothing and gives the signature back, so the retry
    succeeds. The server runs in this process (pytest-django's live_server) so that the first attempt can be
    made to fail."""
    create_repository, attempts = services.repository_create, []

    def fail_first(**kwargs):
        attempts.append(kwargs["name"])
        if len(attempts) == 1:
            raise RuntimeError("the server failed")
        return create_repository(**kwargs)

    monkeypatch.setattr(services, "repository_create", fail_first)
    client = sdk_client(live_server.url, owner)
    request = m.CreateRepoRequest(namespace="group", body=m.CreateRepoRequestBody(repository="web", is_public=True))
    (
        client.create_repo_invoker(request)
        .add_header("X-Sdk-Date", _date_now())  # both attempts in one second: the same signature
        .with_retry(
            retry_condition=lambda response, error: error is not None and error.status_code >= 500,
            max_retries=2,
            backoff_strategy=BackoffStrategies.NONE,
        )
        .invoke()
    )
    assert attempts == ["web", "web"]
    assert Repository.objects.get().name == "web"
