"""Two app nodes on one registry (issue 14, must-have 5; spec sections 1 and 9).

Two gunicorn instances share one PostgreSQL database, one SeaweedFS bucket and DJANGO_SECRET_KEY, and nothing
else: each has a var/ folder of its own (as separate machines have), and SWR_REGISTRY_TOKEN_KEY is unset, so
each derives its token key from the secret key. Whatever one node starts, the other finishes: a blob upload
whose chunks alternate between them (and two chunks for one place, one to each: one wins), an image pushed
through one and pulled through the other, a bearer token issued by one, an admin session, a login lockout
counted on both, a signed request accepted once in all. Then docker/nginx.conf,
run by the real nginx in front of both, is the one address that skopeo pushes to and pulls from.

PostgreSQL only: nodes on separate machines cannot share a SQLite file, which is not a setup this project
supports for several nodes (README, "Several nodes").
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import connection

from swr import services
from swr.models import Repository, User

from .helpers import OPERATOR, assert_swr_error, http_request, sign, start_gunicorn
from .liveserver import free_port
from .test_compose import local_nginx_conf
from .test_registry_clients import read_blob, skopeo, tagged_manifest, write_image_layout

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="several nodes share PostgreSQL: a SQLite file cannot be shared across machines (set DATABASE_URL)",
    ),
]

PASSWORD = "several-Nodes-42"
# The registry's host as both nodes name it (the token audience): what the proxy's one address would be.
SERVICE = "registry.nodes.test"


class Node:
    def __init__(self, base: str, var_dir: Path):
        self.base, self.var_dir = base, var_dir

    @property
    def address(self) -> str:
        return self.base.removeprefix("http://")


@pytest.fixture(scope="module")
def nodes(django_db_setup, seaweedfs, tmp_path_factory):
    """Two gunicorn instances (two workers each, database pools of two) on the test database and the SeaweedFS
    bucket, each with its own var/ folder."""
    with contextlib.ExitStack() as stack:
        started = []
        for label in ("a", "b"):
            var_dir = tmp_path_factory.mktemp(f"node-{label}")
            env = {
                **seaweedfs.env(),
                "DJANGO_SECRET_KEY": settings.SECRET_KEY,
                "SWR_REGISTRY_TOKEN_KEY": None,
                "SWR_REGISTRY_HOST": SERVICE,
                "SWR_VAR_DIR": str(var_dir),
                "DJANGO_DB_POOL_SIZE": "2",
            }
            base = stack.enter_context(start_gunicorn(var_dir / "server.log", workers=2, env=env))
            started.append(Node(base, var_dir))
        yield started


@pytest.fixture
def pusher(settings, owner, namespace):
    """alice, who manages organization 'group', with a password the nodes check (their production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner.username, PASSWORD


def bearer(node: Node, credentials, scope: str) -> str:
    answer = requests.get(
        f"{node.base}/service/token", params={"service": SERVICE, "scope": scope}, auth=credentials, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def test_a_chunked_upload_alternates_between_the_nodes(nodes, pusher, seaweedfs):
    """Each PATCH goes to the other node than the one before; the status is read on one, the final PUT is sent
    to the other; the blob is whole on both, in the bucket, and on neither node's disk."""
    a, b = nodes
    name = "group/chunks"
    token = bearer(a, pusher, f"repository:{name}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    chunks = [os.urandom(size) for size in (700_000, 1_300_001, 5, 900_000)]
    data = b"".join(chunks)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"

    started = requests.post(f"{a.base}/v2/{name}/blobs/uploads/", headers=headers, timeout=30)
    assert started.status_code == 202, started.text
    location, offset = started.headers["Location"], 0
    for number, chunk in enumerate(chunks):
        node = (b, a)[number % 2]
        patched = requests.patch(
            f"{node.base}{location}",
            data=chunk,
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
            timeout=60,
        )
        assert patched.status_code == 202, (number, patched.text)
        offset += len(chunk)
        assert patched.headers["Range"] == f"0-{offset - 1}"
        location = patched.headers["Location"]

    status = requests.get(f"{b.base}{location}", headers=headers, timeout=30)
    assert (status.status_code, status.headers["Range"]) == (204, f"0-{len(data) - 1}")
    finished = requests.put(f"{a.base}{location}", params={"digest": digest}, headers=headers, timeout=60)
    assert finished.status_code == 201, finished.text

    for node in (a, b):
        head = requests.head(f"{node.base}/v2/{name}/blobs/{digest}", headers=headers, timeout=30)
        assert (head.status_code, int(head.headers["Content-Length"])) == (200, len(data))
        pulled = requests.get(f"{node.base}/v2/{name}/blobs/{digest}", headers=headers, timeout=60)
        assert pulled.status_code == 200, pulled.text[:300]
        assert pulled.content == data
    assert f"blobs/sha256/{digest[7:9]}/{digest[7:]}" in seaweedfs.keys("blobs/sha256/")
    for node in (a, b):
        assert not (node.var_dir / "blobs").exists(), "blob bytes on a node's own disk"


def test_chunks_for_one_place_sent_to_both_nodes_at_once(nodes, pusher):
    """Two PATCHes for the same place of one upload, one to each node at the same time: one wins (202), the
    other is a clean 416, and the upload holds the winner's bytes only (the session row decides, not a node)."""
    a, b = nodes
    name = "group/race"
    token = bearer(a, pusher, f"repository:{name}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    started = requests.post(f"{a.base}/v2/{name}/blobs/uploads/", headers=headers, timeout=30)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    bodies = {a.base: os.urandom(3_000_000), b.base: os.urandom(3_000_000)}

    def patch(base):
        return requests.patch(
            f"{base}{location}",
            data=bodies[base],
            headers={**headers, "Content-Type": "application/octet-stream", "Content-Range": "0-2999999"},
            timeout=60,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = dict(zip(bodies, pool.map(patch, bodies), strict=True))
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [202, 416], {base: answer.text[:200] for base, answer in answers.items()}
    (winner,) = [base for base, answer in answers.items() if answer.status_code == 202]
    digest = f"sha256:{hashlib.sha256(bodies[winner]).hexdigest()}"
    loser = b if winner == a.base else a
    finished = requests.put(f"{loser.base}{location}", params={"digest": digest}, headers=headers, timeout=60)
    assert finished.status_code == 201, finished.text
    pulled = requests.get(f"{loser.base}/v2/{name}/blobs/{digest}", headers=headers, timeout=60)
    assert pulled.content == bodies[winner]


def test_an_image_pushed_through_one_node_is_pulled_through_the_other(nodes, pusher, tmp_path):
    a, b = nodes
    user, password = pusher
    source, back = tmp_path / "source", tmp_path / "back"
    image = write_image_layout(source, "1.0")
    skopeo("copy", "--dest-creds", f"{user}:{password}", "--dest-tls-verify=false", f"oci:{source}:1.0",
           f"docker://{a.address}/group/pushed:1.0")  # fmt: skip
    skopeo("copy", "--src-creds", f"{user}:{password}", "--src-tls-verify=false",
           f"docker://{b.address}/group/pushed:1.0", f"oci:{back}:1.0")  # fmt: skip
    digest, manifest = tagged_manifest(back, "1.0")
    assert digest == image["manifest"]["digest"]
    for descriptor in [image["config"], *image["layers"]]:
        assert read_blob(back, descriptor["digest"]) == read_blob(source, descriptor["digest"])
    assert [layer["digest"] for layer in manifest["layers"]] == [layer["digest"] for layer in image["layers"]]


def test_a_token_issued_by_one_node_is_accepted_by_the_other(nodes, pusher, namespace, owner):
    """Tokens are checked by signature alone: the other node holds the same key (derived from the shared
    secret key). A token of another key is refused there, so the acceptance is the key's doing."""
    a, b = nodes
    services.repository_create(namespace=namespace, name="tokens", is_public=False, creator=owner, actor=OPERATOR)
    token = bearer(a, pusher, "repository:group/tokens:pull")
    listed = requests.get(f"{b.base}/v2/group/tokens/tags/list", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"name": "group/tokens", "tags": []}

    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    refused = requests.get(f"{b.base}/v2/group/tokens/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_login_lockout_counted_on_both_nodes_applies_on_both(nodes, pusher):
    """Failures of one user name on either node add up (django-axes counts in the database): after the limit,
    the right password is refused with 429 on both nodes."""
    a, b = nodes
    user, password = pusher
    for attempt in range(5):  # SWR_LOGIN_FAILURE_LIMIT, default 5: the fifth failure locks the name
        node = (a, b)[attempt % 2]
        refused = requests.get(f"{node.base}/service/token", params={"service": SERVICE}, auth=(user, "wrong"))
        assert refused.status_code == (401 if attempt < 4 else 429), (attempt, refused.text)
    for node in (b, a):
        locked = requests.get(f"{node.base}/service/token", params={"service": SERVICE}, auth=(user, password))
        assert locked.status_code == 429, locked.text
        assert locked.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert int(locked.headers["Retry-After"]) > 0


def test_an_admin_session_of_one_node_is_valid_on_the_other(nodes, settings):
    """Sessions are rows of the database, and the session's check of the password hash is keyed by the shared
    secret key: a staff member logged in through one node is logged in on the other."""
    a, b = nodes
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    User.objects.create_superuser("root", password=PASSWORD)
    browser = requests.Session()
    browser.get(f"{a.base}/admin/login/", timeout=30)
    logged_in = browser.post(
        f"{a.base}/admin/login/?next=/admin/",
        data={"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        allow_redirects=False,
        timeout=30,
    )
    assert (logged_in.status_code, logged_in.headers.get("Location")) == (302, "/admin/"), logged_in.text[:300]
    other = browser.get(f"{b.base}/admin/", allow_redirects=False, timeout=30)
    assert other.status_code == 200, (other.status_code, other.headers.get("Location"))
    assert "Log out" in other.text


def test_a_signed_request_is_accepted_once_across_the_nodes(nodes, key_pair, namespace):
    """A captured AK/SK-signed create, accepted by one node, is refused by the other (the used signature is a
    row of the database); the secret key stored encrypted by this process is read by both (shared SECRET_KEY)."""
    a, b = nodes
    path = "/v2/manage/namespaces/group/repos"
    body = json.dumps({"repository": "signed", "is_public": False}).encode()
    headers = sign(*key_pair, "POST", path, body=body, host=a.address)
    created = http_request(f"{a.base}{path}", raw=body, headers={**headers, "Host": a.address})
    assert created.status == 201, created.body
    replayed = http_request(f"{b.base}{path}", raw=body, headers={**headers, "Host": a.address})
    answer = assert_swr_error(tuple(replayed), 401, "SVCSTG.SWR.4010000")
    assert "already used" in answer["error_msg"]
    assert Repository.objects.filter(name="signed").count() == 1


# --- the one address: docker/nginx.conf in front of both nodes ---------------------------------------------------


@pytest.fixture(scope="module")
def proxy(nodes, tmp_path_factory):
    """nginx (Debian's nginx-light) with docker/nginx.conf, its upstreams the two nodes; yields (base, log path)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx is not installed (Debian: apt-get install nginx-light)")
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    upstreams = [int(node.base.rsplit(":", 1)[1]) for node in nodes]
    conf = workdir / "nginx.conf"
    conf.write_text(local_nginx_conf(workdir, port, upstreams))
    log = workdir / "nginx.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [nginx, "-g", "daemon off;", "-p", str(workdir), "-e", "stderr", "-c", str(conf)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield base, log
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_nginx_is_one_address_for_both_nodes(nodes, proxy, pusher, tmp_path):
    """skopeo pushes an image to the proxy's address and pulls it back from there; nginx sent the requests to
    both nodes, and the registry's Location headers and token realm name the proxy (the Host it passes on)."""
    base, log = proxy
    address = base.removeprefix("http://")
    user, password = pusher
    source, back = tmp_path / "source", tmp_path / "back"
    image = write_image_layout(source, "1.0", layers=3)
    skopeo("copy", "--dest-creds", f"{user}:{password}", "--dest-tls-verify=false", f"oci:{source}:1.0",
           f"docker://{address}/group/proxied:1.0")  # fmt: skip
    skopeo("copy", "--src-creds", f"{user}:{password}", "--src-tls-verify=false",
           f"docker://{address}/group/proxied:1.0", f"oci:{back}:1.0")  # fmt: skip
    for descriptor in [image["config"], *image["layers"]]:
        assert read_blob(back, descriptor["digest"]) == read_blob(source, descriptor["digest"])

    challenge = requests.get(f"{base}/v2/")
    assert f'realm="{base}/service/token"' in challenge.headers["WWW-Authenticate"]
    served = set(re.findall(r"upstream=(127\.0\.0\.1:\d+)", log.read_text()))
    assert served == {node.address for node in nodes}, served


def test_nginx_streams_a_large_chunked_upload(nodes, proxy, pusher):
    """A blob upload of 64 MiB sent as one PATCH with Transfer-Encoding: chunked passes the proxy as it arrives
    (no body size limit, no buffering), and the blob is whole."""
    base, log = proxy
    name = "group/large"
    piece, count = os.urandom(1024 * 1024), 64
    digest = f"sha256:{hashlib.sha256(piece * count).hexdigest()}"
    session = requests.Session()
    session.auth = pusher
    started = session.post(f"{base}/v2/{name}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    patched = session.patch(f"{base}{started.headers['Location']}", data=(piece for _ in range(count)), timeout=300)
    assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{len(piece) * count - 1}")
    finished = session.put(f"{base}{patched.headers['Location']}", params={"digest": digest}, timeout=300)
    assert finished.status_code == 201, finished.text
    head = session.head(f"{base}/v2/{name}/blobs/{digest}", timeout=30)
    assert int(head.headers["Content-Length"]) == len(piece) * count
    # nginx warns when it puts a request body into a temporary file instead of passing it on
    assert "buffered to a temporary file" not in log.read_text()
