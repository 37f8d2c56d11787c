"""Keys that every node and worker of one installation must agree on (issue 14, must-have 5; spec section 9).

The registry's bearer tokens are signed by one node and checked by whichever node gets the next request: with
SWR_REGISTRY_TOKEN_KEY unset, the key is derived from the secret key, so processes that share
DJANGO_SECRET_KEY and nothing else (each its own SWR_VAR_DIR, as separate machines) hold the same key, and
none is written to a node's disk. Without DJANGO_SECRET_KEY, the workers of one node that start together
agree on the one key generated into its var/.
"""

import json
import os
import subprocess
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .liveserver import ROOT

PRINT_KEYS = (
    "from registry import settings; import json; "
    "print(json.dumps([settings.SECRET_KEY, settings.SWR_REGISTRY_TOKEN_KEY]))"
)


def start(var_dir, **env) -> subprocess.Popen:
    """A Python process that loads the production settings with ``env`` and SWR_VAR_DIR ``var_dir``, and prints
    its SECRET_KEY and SWR_REGISTRY_TOKEN_KEY."""
    environment = {**os.environ, "SWR_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "registry.settings", **env}
    for name in ("DJANGO_SECRET_KEY", "SWR_REGISTRY_TOKEN_KEY"):
        if environment.get(name) is None:
            environment.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-c", PRINT_KEYS], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )


def keys(*processes: subprocess.Popen) -> list[tuple[str, str]]:
    found = []
    for process in processes:
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        secret_key, token_key = json.loads(output)
        found.append((secret_key, token_key))
    return found


def public_numbers(pem: str):
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    return private.public_key().public_numbers()


def test_nodes_with_one_secret_key_sign_with_one_token_key(tmp_path):
    """Two nodes (own var/ folders) given the same DJANGO_SECRET_KEY derive the same P-256 token key: a token
    one signs, the other's public key verifies. Nothing is written to var/."""
    node_a, node_b = tmp_path / "a", tmp_path / "b"
    (_, key_a), (_, key_b) = keys(
        start(node_a, DJANGO_SECRET_KEY="shared-secret-1", SWR_REGISTRY_TOKEN_KEY=None),
        start(node_b, DJANGO_SECRET_KEY="shared-secret-1", SWR_REGISTRY_TOKEN_KEY=None),
    )
    assert key_a == key_b
    token = jwt.encode({"sub": "1"}, serialization.load_pem_private_key(key_a.encode(), None), algorithm="ES256")
    public_b = serialization.load_pem_private_key(key_b.encode(), None).public_key()
    assert jwt.decode(token, public_b, algorithms=["ES256"]) == {"sub": "1"}
    assert not (node_a / "registry_token_key.pem").exists()
    assert not (node_b / "registry_token_key.pem").exists()


def test_another_secret_key_derives_another_token_key(tmp_path):
    (_, key_a), (_, key_b) = keys(
        start(tmp_path / "a", DJANGO_SECRET_KEY="shared-secret-1", SWR_REGISTRY_TOKEN_KEY=None),
        start(tmp_path / "b", DJANGO_SECRET_KEY="shared-secret-2", SWR_REGISTRY_TOKEN_KEY=None),
    )
    assert public_numbers(key_a) != public_numbers(key_b)


def test_a_given_token_key_is_used_as_it_is(tmp_path):
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    key_file = tmp_path / "token.pem"
    key_file.write_text(pem)
    (_, as_text), (_, from_file) = keys(
        start(tmp_path / "a", DJANGO_SECRET_KEY="s", SWR_REGISTRY_TOKEN_KEY=pem),
        start(tmp_path / "b", DJANGO_SECRET_KEY="s", SWR_REGISTRY_TOKEN_KEY=str(key_file)),
    )
    assert as_text.strip() == from_file.strip() == pem.strip()


def test_workers_starting_together_agree_on_a_generated_secret_key(tmp_path):
    """Without DJANGO_SECRET_KEY, processes of one node (one var/) that start at once all read the one secret key
    generated there, and so derive one token key: none of them overwrites another's."""
    found = keys(*[start(tmp_path, DJANGO_SECRET_KEY=None, SWR_REGISTRY_TOKEN_KEY=None) for _ in range(6)])
    assert len(set(found)) == 1, found
    assert (tmp_path / "secret_key").read_text().strip() == found[0][0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret_key"]


def deploy_check(var_dir, **env) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "SWR_VAR_DIR": str(var_dir),
        "DJANGO_SECURE_SSL": "true",
        "DJANGO_ALLOWED_HOSTS": "registry.example.com",
        **env,
    }
    if environment.get("DJANGO_SECRET_KEY") is None:
        environment.pop("DJANGO_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deploy_check_warns_of_a_secret_key_of_one_node(tmp_path):
    """A generated secret key is this node's alone: `check --deploy` says so (swr.W001), and is clean once
    DJANGO_SECRET_KEY is given."""
    generated = deploy_check(tmp_path, DJANGO_SECRET_KEY=None)
    assert generated.returncode != 0
    assert "swr.W001" in generated.stderr + generated.stdout
    given = deploy_check(tmp_path, DJANGO_SECRET_KEY="a-production-secret-key-" + "x7Q" * 20)
    assert given.returncode == 0, given.stdout + given.stderr
