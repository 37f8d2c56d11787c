"""A worker's peak memory while a 1 GiB layer is pushed (issue 13, must-have 7: under 100 MB).

    .venv/bin/python bench/upload_memory.py [--mib 1024]      (or: make bench-upload-memory)

Starts gunicorn (gunicorn.conf.py) with one worker on a throwaway database (SQLite in a temporary
folder, or a new database beside the PostgreSQL one that DATABASE_URL names, dropped afterwards) and
a temporary var/ folder for the blobs; creates user `mem` with a password and the organization `mem`
(swr_token); then pushes --mib MiB of bytes generated on the fly (never stored on the client's side)
to mem/layer twice: as a streamed PATCH (Transfer-Encoding: chunked, no Content-Length) closed by a
PUT, and as one monolithic PUT with Content-Length. Before each push the worker's peak resident size
(VmHWM) is set back to its resident size (/proc/PID/clear_refs); after it, VmHWM is the peak of the
push. Prints both figures and exits 1 when a peak reaches 100 MB or a push fails.
tests/test_upload_memory.py checks the same with 200 MiB in the test suite.
"""

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.liveserver import (  # noqa: E402
    gunicorn,
    manage,
    memory_kib,
    reset_peak_memory,
    temporary_directory,
    throwaway_database,
)
from tests.oci_client import RegistryClient  # noqa: E402

# 100 MB of memory as the kernel (VmHWM, in KiB), ps and top count it: 100 MiB.
LIMIT_BYTES = 100 * 1024 * 1024


def mb(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the pushed blob in MiB (default 1024)")
    size = parser.parse_args().mib * 1024 * 1024
    password = "mem-" + secrets.token_urlsafe(18)
    with (
        temporary_directory("swr-upload-memory-") as workdir,
        throwaway_database(os.environ.get("DATABASE_URL"), workdir, "memory") as url,
    ):
        env = {"DATABASE_URL": url, "SWR_VAR_DIR": str(workdir / "var")}
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "swr_token", "--tenant", "mem", "--user", "mem", "--namespace", "mem", "--password",
               stdin=password + "\n")  # fmt: skip
        with gunicorn(env, workdir / "server.log", workers=1) as server:
            (worker,) = server.workers()
            client = RegistryClient(server.base, "mem", password)
            engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
            print(f"gunicorn (gunicorn.conf.py, 1 worker, pid {worker}) on {engine}; pushing {size / 2**20:.0f} MiB")
            failed = False
            for seed, (label, streamed) in enumerate([("streamed PATCH", True), ("monolithic PUT", False)], start=1):
                try:
                    client.push_blob("mem/layer", 1024 * 1024, seed=100 + seed, streamed=streamed)  # warm-up
                    if not reset_peak_memory(worker):
                        print("cannot reset VmHWM (/proc/PID/clear_refs): the figure includes the worker's start")
                    before = memory_kib(worker)
                    started = time.monotonic()
                    digest = client.push_blob("mem/layer", size, seed=seed, streamed=streamed)
                    seconds = time.monotonic() - started
                    stored = client.blob_size("mem/layer", digest)
                except Exception as error:  # a refused or broken push: say what happened, then go on
                    print(f"{label:15} FAILED: {error}")
                    failed = True
                    continue
                after = memory_kib(worker)
                peak = after["VmHWM"]
                verdict = "under 100 MiB" if peak * 1024 < LIMIT_BYTES else "OVER 100 MiB"
                print(
                    f"{label:15} peak {mb(peak)} ({verdict}; resident before {mb(before['VmRSS'])}, "
                    f"+{mb(peak - before['VmRSS'])}), {size / 2**20 / seconds:.0f} MiB/s, "
                    f"HEAD says {stored} bytes"
                )
                failed |= peak * 1024 >= LIMIT_BYTES or stored != size
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
