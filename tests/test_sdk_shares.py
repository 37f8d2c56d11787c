"""The official SDK (huaweicloudsdkswr) drives spec sections 11 and 12 against a live server after a real push.

Each call's answer is read into the SDK's own models and its fields checked: the docker login credentials
(``create_secret``, ``create_authorization_token``), the five access-domain calls, and the v2 and v3 lists of
shared repositories. Identical signed requests within one second are refused by the replay rule (spec
section 1), so calls that repeat wait a second or differ.
"""

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkswr.v2 import model as m

from swr import services
from swr.models import RepositoryShare, TemporaryLogin

from .helpers import OPERATOR
from .test_registry_clients import registry_address, write_image_layout
from .test_sdk import sdk_client
from .test_share_clients import pull, skopeo

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushed(server, owner, namespace, tmp_path):
    """alice pushed group/app:1.0 with skopeo (the push created the private repository)."""
    token = services.token_issue(user=owner, actor=OPERATOR)[1]
    source = tmp_path / "source"
    write_image_layout(source, "1.0", layers=1)
    remote = f"docker://{registry_address(server)}/group/app:1.0"
    skopeo("copy", "--dest-creds", f"alice:{token}", "--dest-tls-verify=false", f"oci:{source}:1.0", remote)


def domain_request(tenant: str) -> m.ShowAccessDomainRequest:
    return m.ShowAccessDomainRequest(namespace="group", repository="app", access_domain=tenant)


def test_docker_login_credentials_by_sdk(server, owner, pushed, tmp_path):
    sdk = sdk_client(server, owner)
    host = registry_address(server)

    secret = sdk.create_secret(m.CreateSecretRequest(projectname="cn-north-4"))
    command = secret.x_swr_dockerlogin.split()
    assert command[:3] == ["docker", "login", "-u"]
    assert command[3].startswith("cn-north-4@")
    assert command[6] == host
    assert list(secret.auths) == [host]
    assert base64.b64decode(secret.auths[host].auth).decode() == f"{command[3]}:{command[5]}"
    expires = datetime.fromisoformat(secret.x_swr_expireat.replace("Z", "+00:00"))
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    login = TemporaryLogin.objects.get(identifier=command[3].split("@")[1])
    assert (login.user, login.kind) == (owner, "secret")
    assert pull(server, tmp_path / "by-secret", "--src-creds", f"{command[3]}:{command[5]}").returncode == 0

    token = sdk.create_authorization_token(m.CreateAuthorizationTokenRequest())
    user, password = base64.b64decode(token.auths[host].auth).decode().split(":", 1)
    assert user.startswith("bearertoken@")
    assert token.x_swr_dockerlogin == f"docker login -u {user} -p {password} {host}"
    assert token.x_swr_expireat.endswith("Z")
    assert TemporaryLogin.objects.get(identifier=user.split("@")[1]).kind == "bearertoken"
    assert pull(server, tmp_path / "by-token", "--src-creds", f"{user}:{password}").returncode == 0


def test_repository_shares_by_sdk(server, owner, pushed, make_user, other_tenant, tmp_path):
    sdk = sdk_client(server, owner)
    dave = make_user("dave", other_tenant)
    dave_sdk = sdk_client(server, dave)
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    body = m.CreateRepoDomainsRequestBody(access_domain="globex", permit="read", deadline=deadline, description="ci")
    sdk.create_repo_domains(m.CreateRepoDomainsRequest(namespace="group", repository="app", body=body))
    share = RepositoryShare.objects.get()
    assert (share.access_domain, share.description, share.creator) == (other_tenant, "ci", owner)

    time.sleep(1.1)  # the same signed request within a second is a replay (spec section 1), not a second share
    with pytest.raises(ClientRequestException) as twice:
        sdk.create_repo_domains(m.CreateRepoDomainsRequest(namespace="group", repository="app", body=body))
    assert (twice.value.status_code, twice.value.error_code) == (409, "SVCSTG.SWR.4090083")

    listed = sdk.list_repo_domains(m.ListRepoDomainsRequest(namespace="group", repository="app"))
    [row] = listed.body
    assert (row.namespace, row.repository, row.access_domain, row.permit) == ("group", "app", "globex", "read")
    assert (row.deadline[:19], row.description, row.status) == (deadline[:19], "ci", True)
    assert (row.creator_id, row.creator_name) == (str(owner.pk), "alice")
    assert row.created.endswith("Z")
    assert row.updated.endswith("Z")

    shown = sdk.show_access_domain(
        m.ShowAccessDomainRequest(namespace="group", repository="app", access_domain="globex")
    )
    assert (shown.exist, shown.access_domain, shown.permit, shown.status) == (True, "globex", "read", True)
    absent = sdk.show_access_domain(
        m.ShowAccessDomainRequest(namespace="group", repository="app", access_domain="nobody")
    )
    assert absent.exist is False

    change = m.UpdateRepoDomainsRequestBody(permit="read", deadline="forever", description="changed")
    sdk.update_repo_domains(
        m.UpdateRepoDomainsRequest(namespace="group", repository="app", access_domain="globex", body=change)
    )
    share.refresh_from_db()
    assert (share.deadline, share.description) == (None, "changed")

    # The other tenant: reads and pulls the shared repository, and finds it in its lists.
    mine = sdk.list_shared_repos_details(m.ListSharedReposDetailsRequest(center="self", limit="10"))
    assert [(r.namespace, r.name, r.is_public, r.num_images) for r in mine.body] == [("group", "app", False, 1)]
    assert mine.content_range == "0-1/1"
    theirs = dave_sdk.list_shared_repos_details(m.ListSharedReposDetailsRequest(center="thirdparty"))
    assert [(r.namespace, r.name, r.domain_name, r.tags) for r in theirs.body] == [("group", "app", "acme", ["1.0"])]
    assert theirs.content_range == "0-1/1"
    v3 = dave_sdk.list_shared_repo_details(m.ListSharedRepoDetailsRequest(shared_by="thirdparty", limit=10))
    [repo] = v3.repos
    assert (repo.name, repo.namespace_name, repo.domain_name, repo.status, repo.num_images) == (
        "app", "group", "acme", True, 1,
    )  # fmt: skip
    assert repo.size > 0
    assert v3.next_marker is None
    one = dave_sdk.list_shared_repo_details(m.ListSharedRepoDetailsRequest(shared_by="thirdparty", limit=1))
    assert [r.name for r in one.repos] == ["app"]
    assert dave_sdk.show_repository(m.ShowRepositoryRequest(namespace="group", repository="app")).name == "app"
    assert (
        pull(
            server, tmp_path / "dave", "--src-creds", f"dave:{services.token_issue(user=dave, actor=OPERATOR)[1]}"
        ).returncode
        == 0
    )

    sdk.delete_repo_domains(m.DeleteRepoDomainsRequest(namespace="group", repository="app", access_domain="globex"))
    assert not RepositoryShare.objects.exists()
    time.sleep(1.1)
    with pytest.raises(ClientRequestException) as gone:
        sdk.delete_repo_domains(m.DeleteRepoDomainsRequest(namespace="group", repository="app", access_domain="globex"))
    assert (gone.value.status_code, gone.value.error_code) == (404, "SVCSTG.SWR.4040084")
    with pytest.raises(ClientRequestException) as refused:
        dave_sdk.show_repository(m.ShowRepositoryRequest(namespace="group", repository="app"))
    assert refused.value.status_code == 403
