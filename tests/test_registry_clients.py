"""Real registry clients against the service over HTTP (issue 13, must-have 8; spec section 9).

skopeo (Debian's package; `make test` installs it) copies an image that the test writes as an OCI
image layout (random layers, config, manifest, index.json) into the registry under two tags, and back
into another layout: manifest, config and layers come back byte for byte, and the management API then
counts the tags and the bytes of the repository's distinct blobs. oras (PyPI: the ORAS project's Python
SDK) pushes a file as an artifact, with monolithic and with chunked blob uploads, and pulls it back.
All of them log in as registry clients do: the 401 challenge, then a token from /service/token.

Each test runs on both blob storages (tests/conftest.py blob_storage): the folder, and SeaweedFS, where pulls
follow the registry's 307 to a signed URL of the object store.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import oras.client
import pytest

from swr import services

from .helpers import OPERATOR
from .liveserver import get

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

PASSWORD = "registry-Clients-42"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture(scope="module")
def server(server_on_blob_storage):
    """gunicorn on each blob storage."""
    return server_on_blob_storage


@pytest.fixture
def pusher(settings, owner, namespace):
    """alice, who manages organization 'group', with a password the server checks (its production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner.username, PASSWORD


@pytest.fixture
def token(owner):
    return services.token_issue(user=owner, actor=OPERATOR)[1]


def registry_address(server: str) -> str:
    return server.removeprefix("http://")


def repository(server: str, token: str, namespace: str, name: str) -> dict:
    """The management API's view of one repository (spec section 5)."""
    status, _, body = get(
        f"{server}/v2/manage/namespaces/{namespace}/repos/{name.replace('/', '$')}", {"X-Auth-Token": token}
    )
    assert status == 200, body[:500]
    return json.loads(body)


# --- skopeo -----------------------------------------------------------------------------------------------------


def skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: `make test` installs it (apt-get install skopeo)")
    # --insecure-policy: no signature policy file is needed (the machine may have none).
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stdout}{result.stderr}"
    return result.stdout


def _put_blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(seed: int) -> tuple[bytes, str]:
    """A gzipped tar of one file of random bytes, and its diff id (the digest of the tar)."""
    content = os.urandom(300 * 1024 + seed)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        member = tarfile.TarInfo(f"layer{seed}/data.bin")
        member.size, member.mtime, member.mode = len(content), 0, 0o644
        tar.addfile(member, io.BytesIO(content))
    raw = archive.getvalue()
    return gzip.compress(raw, mtime=0), f"sha256:{hashlib.sha256(raw).hexdigest()}"


def write_image_layout(layout: Path, tag: str, layers: int = 2) -> dict:
    """An OCI image layout holding one image (``layers`` random layers) tagged ``tag``; its descriptors."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    layer_descriptors, diff_ids = [], []
    for seed in range(layers):
        data, diff_id = _layer(seed)
        layer_descriptors.append({"mediaType": OCI_LAYER, **_put_blob(layout, data)})
        diff_ids.append(diff_id)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {seed}"} for seed in range(layers)],
    }
    config_descriptor = {"mediaType": OCI_CONFIG, **_put_blob(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": layer_descriptors}
    manifest_descriptor = {"mediaType": OCI_MANIFEST, **_put_blob(layout, json.dumps(manifest).encode())}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "manifests": [{**manifest_descriptor, "annotations": {REF_NAME: tag}}]}
    (layout / "index.json").write_text(json.dumps(index))
    return {"manifest": manifest_descriptor, "config": config_descriptor, "layers": layer_descriptors}


def read_blob(layout: Path, digest: str) -> bytes:
    algorithm, hex_digest = digest.split(":")
    return (layout / "blobs" / algorithm / hex_digest).read_bytes()


def tagged_manifest(layout: Path, tag: str) -> tuple[str, dict]:
    """The digest and content of the manifest that ``tag`` names in a layout's index.json."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if (m.get("annotations") or {}).get(REF_NAME) == tag]
    return entry["digest"], json.loads(read_blob(layout, entry["digest"]))


def test_skopeo_copies_an_image_in_and_out_byte_for_byte(server, pusher, token, tmp_path):
    user, password = pusher
    source, back = tmp_path / "source", tmp_path / "back"
    image = write_image_layout(source, "1.0")
    remote = f"docker://{registry_address(server)}/group/app"

    # Push under two tags: the second copy finds every blob there already.
    for tag in ("1.0", "latest"):
        skopeo("copy", "--dest-creds", f"{user}:{password}", "--dest-tls-verify=false", f"oci:{source}:1.0",
               f"{remote}:{tag}")  # fmt: skip
    listed = json.loads(skopeo("list-tags", "--creds", f"{user}:{password}", "--tls-verify=false", remote))
    assert sorted(listed["Tags"]) == ["1.0", "latest"]

    skopeo("copy", "--src-creds", f"{user}:{password}", "--src-tls-verify=false", f"{remote}:1.0", f"oci:{back}:1.0")
    digest, manifest = tagged_manifest(back, "1.0")
    assert digest == image["manifest"]["digest"]  # the manifest itself came back unchanged
    assert [layer["digest"] for layer in manifest["layers"]] == [layer["digest"] for layer in image["layers"]]
    for descriptor in [image["config"], *image["layers"]]:
        assert read_blob(back, descriptor["digest"]) == read_blob(source, descriptor["digest"])

    # The management API counts what was pushed: two tags; the distinct blobs (config and layers) once each.
    detail = repository(server, token, "group", "app")
    assert detail["num_images"] == 2
    assert detail["size"] == image["config"]["size"] + sum(layer["size"] for layer in image["layers"])


# --- oras --------------------------------------------------------------------------------------------------------


def oras_client(server: str, user: str, password: str) -> oras.client.OrasClient:
    """oras-py over plain HTTP with these credentials (set directly: its login() writes ~/.docker/config.json).

    With HTTP Basic on every request, which the registry's routes accept besides bearer tokens (spec
    section 9): oras-py's token backend keeps the token of its first challenge (pull, from a HEAD) and
    asks for a new one only after a 403, while registries (this one, CNCF distribution) answer a token
    that does not cover a push with 401 and a new challenge, as docker, containerd and skopeo expect.
    """
    client = oras.client.OrasClient(hostname=registry_address(server), insecure=True, auth_backend="basic")
    client.auth.set_basic_auth(user, password)
    return client


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_oras_pushes_and_pulls_an_artifact(server, pusher, token, tmp_path, chunked):
    user, password = pusher
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    target = f"{registry_address(server)}/group/artifacts:{'chunked' if chunked else 'monolithic'}"

    pushed = oras_client(server, user, password).push(
        target=target, files=[str(artifact)], disable_path_validation=True, do_chunked=chunked,
        chunk_size=1024 * 1024, quiet=True,
    )  # fmt: skip
    assert pushed.status_code == 201

    out = tmp_path / "pulled"
    files = oras_client(server, user, password).pull(target=target, outdir=str(out))
    assert [Path(f).name for f in files] == ["model.bin"]
    assert (out / "model.bin").read_bytes() == artifact.read_bytes()

    detail = repository(server, token, "group", "artifacts")
    assert detail["num_images"] == 1
    # The file and oras's empty config "{}".
    assert detail["size"] == artifact.stat().st_size + 2


def test_chunked_bodies_stream_into_an_upload_to_its_last_chunk(server, pusher):
    """A PATCH and the final PUT with ``Transfer-Encoding: chunked`` (no Content-Length), as a streaming client
    sends them: both bodies reach the blob (the final PUT's body was once ignored)."""
    import hashlib

    import requests

    first, last = os.urandom(300_000), os.urandom(200_000)
    digest = "sha256:" + hashlib.sha256(first + last).hexdigest()
    session = requests.Session()
    session.auth = pusher
    started = session.post(f"{server}/v2/group/chunked/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = f"{server}{started.headers['Location']}"
    patched = session.patch(location, data=iter([first[:100_000], first[100_000:]]))
    assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{len(first) - 1}")
    finished = session.put(f"{server}{patched.headers['Location']}?digest={digest}", data=iter([last]))
    assert finished.status_code == 201, finished.text
    pulled = session.get(f"{server}/v2/group/chunked/blobs/{digest}")
    assert pulled.content == first + last


def test_chunked_bodies_around_the_size_read_whole(server, pusher):
    """Chunked bodies of up to SWR_MAX_BODY_BYTES are read whole before the database is asked, longer ones
    streamed after the part read to find out (views._body): every size on either side of that limit reaches
    the blob whole, in order."""
    import hashlib

    import requests
    from django.conf import settings

    limit = settings.SWR_MAX_BODY_BYTES
    parts = [os.urandom(size) for size in (limit, limit + 1, 1, 3 * limit + 7)]
    whole = b"".join(parts)
    session = requests.Session()
    session.auth = pusher
    location = f"{server}{session.post(f'{server}/v2/group/chunked/blobs/uploads/').headers['Location']}"
    size = 0
    for part in parts:
        pieces = [part[i : i + 100_000] for i in range(0, len(part), 100_000)]
        patched = session.patch(location, data=iter(pieces))
        size += len(part)
        assert (patched.status_code, patched.headers["Range"]) == (202, f"0-{size - 1}"), patched.text
        location = f"{server}{patched.headers['Location']}"
    digest = "sha256:" + hashlib.sha256(whole).hexdigest()
    assert session.put(f"{location}?digest={digest}").status_code == 201
    assert session.get(f"{server}/v2/group/chunked/blobs/{digest}").content == whole
