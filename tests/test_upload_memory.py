"""Uploads stream (issue 13, must-have 7): a worker's memory while it receives a large blob.

One gunicorn worker (gunicorn.conf.py, on the test database) receives 200 MiB of bytes generated on
the fly, as a streamed PATCH without Content-Length, or as a monolithic PUT with one. Its peak resident
size (VmHWM of /proc/<pid>/status, set back to the resident size before the upload) may grow by a few
buffers, never by the blob: by less than GROWTH_LIMIT, and it stays under 100 MiB. bench/upload_memory.py
measures the same for 1 GiB and prints the figures.

Both storages (tests/conftest.py blob_storage): on the folder, and on SeaweedFS, where the bytes go up as a
multipart upload holding one 8 MiB part at a time (swr/distribution/s3.py). On S3 only the growth is held to
its limit: boto3's S3 client makes a worker rest at ~115 MiB, above 100 MiB before any byte arrives.
"""

import contextlib
from pathlib import Path

import pytest

from .helpers import database_url
from .liveserver import gunicorn, memory_kib, reset_peak_memory, temporary_directory
from .oci_client import RegistryClient

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

UPLOAD_BYTES = 200 * 1024 * 1024
GROWTH_LIMIT_KIB = 24 * 1024  # a blob held whole would add 200 MiB
PEAK_LIMIT_KIB = 100 * 1024  # must-have 7: under 100 MB, counted as the kernel and ps count memory (MiB)
PASSWORD = "upload-Memory-42"


@pytest.fixture
def pusher(settings, owner, namespace):
    """alice, who manages organization 'group', with a password the server checks (its production hasher)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    owner.set_password(PASSWORD)
    owner.save(update_fields=["password"])
    return owner.username, PASSWORD


@contextlib.contextmanager
def _one_worker(blob_storage, extra_env: dict | None = None):
    with temporary_directory("swr-upload-memory-") as workdir:
        env = {"DATABASE_URL": database_url(), "DJANGO_CONN_MAX_AGE": "0", "SWR_VAR_DIR": str(workdir / "var")}
        if blob_storage.kind == "s3":
            env |= blob_storage.env
        else:
            env |= {"SWR_BLOB_STORAGE": "filesystem", "SWR_BLOB_ROOT": str(workdir / "var" / "blobs")}
        with gunicorn(env | (extra_env or {}), workdir / "server.log", workers=1) as server:
            yield server


@pytest.fixture
def one_worker(blob_storage):
    """gunicorn with a single worker, so that the worker that receives the upload is known; its blobs on each
    storage (tests/conftest.py blob_storage)."""
    with _one_worker(blob_storage) as server:
        yield server


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed PATCH", "monolithic PUT"])
def test_worker_memory_stays_flat_while_a_large_blob_arrives(blob_storage, one_worker, pusher, streamed):
    (worker,) = one_worker.workers()
    client = RegistryClient(one_worker.base, *pusher)
    # A small push first: the code, the token and the connections it needs are loaded before the measurement.
    client.push_blob("group/memory", 1024 * 1024, seed=1, streamed=streamed)
    assert reset_peak_memory(worker), "cannot reset VmHWM (/proc/PID/clear_refs): the peak would include startup"
    before = memory_kib(worker)

    digest = client.push_blob("group/memory", UPLOAD_BYTES, seed=2, streamed=streamed)

    after = memory_kib(worker)
    growth = after["VmHWM"] - before["VmRSS"]
    figures = f"resident before {before['VmRSS']} KiB, peak during the upload {after['VmHWM']} KiB (+{growth} KiB)"
    assert client.blob_size("group/memory", digest) == UPLOAD_BYTES
    assert growth < GROWTH_LIMIT_KIB, figures
    if blob_storage.kind == "filesystem":
        # On S3, boto3 (its S3 service model) makes a worker rest at ~115 MiB before any upload: there the growth
        # above, one 8 MiB multipart part and its request, is what the upload costs.
        assert after["VmHWM"] < PEAK_LIMIT_KIB, figures


def minor_faults(pid: int) -> int:
    """The minor page faults of process ``pid`` so far (minflt, the 10th field of /proc/<pid>/stat): each is a
    page the kernel had to give the process, zeroed, when it first touched it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])  # the fields after the command's name start with the 3rd, state


def _faults_of_a_large_push(server, pusher, streamed: bool) -> int:
    """The page faults of ``server``'s one worker while it receives a blob of UPLOAD_BYTES (after a small push
    that loads what the upload needs)."""
    (worker,) = server.workers()
    client = RegistryClient(server.base, *pusher)
    client.push_blob("group/faults", 1024 * 1024, seed=1, streamed=streamed)
    before = minor_faults(worker)
    client.push_blob("group/faults", UPLOAD_BYTES, seed=2, streamed=streamed)
    return minor_faults(worker) - before


PAGES = UPLOAD_BYTES // 4096  # the pages that 200 MiB span


@pytest.mark.parametrize("blob_storage", ["filesystem"], indirect=True, scope="module")
@pytest.mark.parametrize("streamed", [True, False], ids=["streamed PATCH", "monolithic PUT"])
def test_a_large_blob_reuses_the_workers_memory(blob_storage, one_worker, pusher, streamed):
    """gunicorn.conf.py's post_fork: the buffers of a blob's body reads come from glibc's heap again and again,
    not as fresh pages from the kernel for each read (a page fault per 4 KiB): 200 MiB received on the folder cost
    the worker a few hundred page faults, fewer than a tenth of the 51,200 pages they span. With glibc's default
    thresholds it took about 100,000 to 116,000. On SeaweedFS the 8 MiB parts of a multipart upload
    (swr/distribution/s3.py) are above the threshold, and still come as fresh pages."""
    faults = _faults_of_a_large_push(one_worker, pusher, streamed)
    assert faults < PAGES // 10, f"{faults} page faults while 200 MiB arrived"


@pytest.mark.parametrize("blob_storage", ["filesystem"], indirect=True, scope="module")
def test_the_operators_own_allocator_setting_wins(blob_storage, pusher):
    """An operator who sets glibc's allocator (here GLIBC_TUNABLES with glibc's default mmap threshold, 128 KiB)
    keeps that setting: post_fork leaves both values to glibc, and the reads come as fresh pages again."""
    tunables = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}
    with _one_worker(blob_storage, tunables) as server:
        faults = _faults_of_a_large_push(server, pusher, streamed=True)
    assert faults > PAGES // 2, f"only {faults} page faults while 200 MiB arrived"
