"""Real registry clients with section 11's temporary logins and section 12's shares (issue 15, must-haves 2, 3).

gunicorn serves the test database; skopeo (Debian's package) logs in and copies images over HTTP. podman is not
installed on this machine, so skopeo stands for the docker-compatible clients: ``skopeo login`` takes the user
name and password of the ``docker login`` command that ``POST /v2/manage/utils/secret`` prints.

- The printed ``docker login`` credentials (a secret, and an authorization token) log skopeo in and pull; a
  revoked or expired temporary login is refused.
- Tenant acme pushes a private image, shares it with tenant globex, and globex's user pulls it with skopeo;
  once the share is stopped, or its deadline passes, globex's user is refused at once (a bearer token asked
  for after that holds no pull; one issued before lives SWR_REGISTRY_TOKEN_LIFETIME, 300 seconds by default).
"""

import base64
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from swr import services
from swr.models import Repository, RepositoryShare, TemporaryLogin

from .helpers import OPERATOR, http_request
from .test_registry_clients import registry_address, tagged_manifest, write_image_layout

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

SHARES = "/v2/manage/namespaces/group/repositories/app/access-domains"


def run_skopeo(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: `make test` installs it (apt-get install skopeo)")
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)


def skopeo(*args: str) -> str:
    result = run_skopeo(*args)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def alice_token(owner):
    return services.token_issue(user=owner, actor=OPERATOR)[1]


@pytest.fixture
def pushed(server, owner, namespace, alice_token, tmp_path):
    """alice (manager of 'group' in acme) pushed an image to group/app:1.0 with skopeo; the push created the
    repository, private. The image's descriptors."""
    source = tmp_path / "source"
    image = write_image_layout(source, "1.0", layers=1)
    remote = f"docker://{registry_address(server)}/group/app:1.0"
    skopeo("copy", "--dest-creds", f"alice:{alice_token}", "--dest-tls-verify=false", f"oci:{source}:1.0", remote)
    assert Repository.objects.get(namespace=namespace, name="app").is_public is False
    return image


def pull(server: str, target: Path, *credentials: str) -> subprocess.CompletedProcess:
    """skopeo copy of group/app:1.0 into an OCI layout, with ``--src-creds`` or ``--authfile``."""
    return run_skopeo(
        "copy", *credentials, "--src-tls-verify=false", f"docker://{registry_address(server)}/group/app:1.0",
        f"oci:{target}:1.0",
    )  # fmt: skip


# --- section 11 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["secret", "authorizationtoken"])
def test_printed_docker_login_works_with_skopeo(server, pushed, alice_token, tmp_path, call):
    answer = http_request(f"{server}/v2/manage/utils/{call}", "POST", token=alice_token)
    assert answer.status == 200, answer.body
    command = answer.headers["X-Swr-Dockerlogin"].split()
    assert command[:3] == ["docker", "login", "-u"]
    assert command[4] == "-p"
    username, password, host = command[3], command[5], command[6]
    assert host == registry_address(server)
    auths = json.loads(answer.body)["auths"]
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{username}:{password}"
    if call == "authorizationtoken":
        assert username.startswith("bearertoken@")

    # HTTP Basic straight on a registry route, and at the token endpoint.
    basic = {"Authorization": f"Basic {auths[host]['auth']}"}
    tags = http_request(f"{server}/v2/group/app/tags/list", headers=basic)
    assert (tags.status, json.loads(tags.body)["tags"]) == (200, ["1.0"])
    token = http_request(f"{server}/service/token?service={host}&scope=repository:group/app:pull", headers=basic)
    assert token.status == 200, token.body

    authfile = tmp_path / "auth.json"
    skopeo("login", "--authfile", str(authfile), "--tls-verify=false", "-u", username, "-p", password, host)
    result = pull(server, tmp_path / "pulled", "--authfile", str(authfile))
    assert result.returncode == 0, result.stderr
    digest, _ = tagged_manifest(tmp_path / "pulled", "1.0")
    assert digest == pushed["manifest"]["digest"]

    # A wrong secret is refused; so is the login once revoked (the admin deletes it) or expired.
    wrong = run_skopeo("login", "--authfile", str(tmp_path / "x.json"), "--tls-verify=false", "-u", username,
                       "-p", password + "x", host)  # fmt: skip
    assert wrong.returncode != 0
    login = TemporaryLogin.objects.get(identifier=username.split("@")[1])
    TemporaryLogin.objects.filter(pk=login.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = pull(server, tmp_path / "expired", "--src-creds", f"{username}:{password}")
    assert expired.returncode != 0
    assert "401" in expired.stderr or "unauthorized" in expired.stderr.lower()
    TemporaryLogin.objects.filter(pk=login.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    assert pull(server, tmp_path / "again", "--src-creds", f"{username}:{password}").returncode == 0
    services.temporary_login_revoke(login=login, actor=OPERATOR)
    revoked = run_skopeo("login", "--authfile", str(tmp_path / "y.json"), "--tls-verify=false", "-u", username,
                         "-p", password, host)  # fmt: skip
    assert revoked.returncode != 0


# --- section 12 --------------------------------------------------------------------------------------------------


@pytest.fixture
def dave_token(make_user, other_tenant):
    """An API token of dave, a plain user of tenant globex: his registry password (user name dave)."""
    dave = make_user("dave", other_tenant)
    return services.token_issue(user=dave, actor=OPERATOR)[1]


def registry_token(server: str, credentials: str) -> dict:
    """A bearer token of /service/token for pulling group/app, decoded claims' access list."""
    basic = base64.b64encode(credentials.encode()).decode()
    answer = http_request(
        f"{server}/service/token?service={registry_address(server)}&scope=repository:group/app:pull",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status == 200, answer.body
    token = json.loads(answer.body)["token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return {"token": token, "access": claims["access"], "expires_in": json.loads(answer.body)["expires_in"]}


def test_another_tenant_pulls_a_shared_image_until_the_share_ends(server, pushed, alice_token, dave_token, tmp_path):
    dave = f"dave:{dave_token}"
    refused = pull(server, tmp_path / "before", "--src-creds", dave)
    assert refused.returncode != 0
    assert registry_token(server, dave)["access"] == [{"type": "repository", "name": "group/app", "actions": []}]

    shared = http_request(f"{server}{SHARES}", "POST", body={"access_domain": "globex"}, token=alice_token)
    assert shared.status == 201, shared.body
    result = pull(server, tmp_path / "shared", "--src-creds", dave)
    assert result.returncode == 0, result.stderr
    digest, manifest = tagged_manifest(tmp_path / "shared", "1.0")
    assert digest == pushed["manifest"]["digest"]
    issued = registry_token(server, dave)
    assert issued["access"][0]["actions"] == ["pull"]
    assert issued["expires_in"] == 300  # a token already issued lives this long; a new one is judged anew

    # The management API agrees: dave reads the repository and finds it among those shared with globex.
    detail = http_request(f"{server}/v2/manage/namespaces/group/repos/app", token=dave_token)
    assert detail.status == 200
    listed = http_request(f"{server}/v2/manage/shared-repositories?center=thirdparty", token=dave_token)
    assert [r["name"] for r in json.loads(listed.body)] == ["app"]

    stopped = http_request(f"{server}{SHARES}/globex", "DELETE", token=alice_token)
    assert stopped.status == 204
    after = pull(server, tmp_path / "after", "--src-creds", dave)
    assert after.returncode != 0
    assert "denied" in after.stderr.lower() or "403" in after.stderr or "unauthorized" in after.stderr.lower()
    assert registry_token(server, dave)["access"][0]["actions"] == []
    assert http_request(f"{server}/v2/manage/namespaces/group/repos/app", token=dave_token).status == 403


def test_an_expired_share_stops_pulls_at_once(server, pushed, alice_token, dave_token, tmp_path):
    deadline = (timezone.now() + timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {"access_domain": "globex", "deadline": deadline}
    assert http_request(f"{server}{SHARES}", "POST", body=body, token=alice_token).status == 201
    assert pull(server, tmp_path / "live", "--src-creds", f"dave:{dave_token}").returncode == 0

    RepositoryShare.objects.update(deadline=timezone.now() - timedelta(seconds=1))
    assert pull(server, tmp_path / "expired", "--src-creds", f"dave:{dave_token}").returncode != 0
    assert registry_token(server, f"dave:{dave_token}")["access"][0]["actions"] == []
    shown = json.loads(http_request(f"{server}{SHARES}/globex", token=alice_token).body)
    assert (shown["exist"], shown["status"]) == (True, False)
