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


def measure(mib: int = 1024, database_url: str | None = None, report=print) -> dict:
    """Push ``mib`` MiB streamed and monolithic to a fresh one-worker gunicorn; the peaks, as a dict:
    ``{"engine", "pushes": [{"label", "peak_mib", "before_mib", "mib_per_s", "stored"} or {"label", "error"}],
    "ok"}`` (ok: every push stored whole and every peak under 100 MiB). ``report`` gets a line per push."""
    size = mib * 1024 * 1024
    password = "mem-" + secrets.token_urlsafe(18)
    pushes, ok = [], True
    with (
        temporary_directory("swr-upload-memory-") as workdir,
        throwaway_database(database_url, workdir, "memory") as url,
    ):
        env = {"DATABASE_URL": url, "SWR_VAR_DIR": str(workdir / "var")}
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "swr_token", "--tenant", "mem", "--user", "mem", "--namespace", "mem", "--password",
               stdin=password + "\n")  # fmt: skip
        engine = "PostgreSQL" if url.startswith("postgres") else "SQLite"
        with gunicorn(env, workdir / "server.log", workers=1) as server:
            (worker,) = server.workers()
            client = RegistryClient(server.base, "mem", password)
            report(f"gunicorn (gunicorn.conf.py, 1 worker, pid {worker}) on {engine}; pushing {size / 2**20:.0f} MiB")
            for seed, (label, streamed) in enumerate([("streamed PATCH", True), ("monolithic PUT", False)], start=1):
                try:
                    client.push_blob("mem/layer", 1024 * 1024, seed=100 + seed, streamed=streamed)  # warm-up
                    if not reset_peak_memory(worker):
                        report("cannot reset VmHWM (/proc/PID/clear_refs): the figure includes the worker's start")
                    before = memory_kib(worker)
                    started = time.monotonic()
                    digest = client.push_blob("mem/layer", size, seed=seed, streamed=streamed)
                    seconds = time.monotonic() - started
                    stored = client.blob_size("mem/layer", digest)
                except Exception as error:  # a refused or broken push: say what happened, then go on
                    report(f"{label:15} FAILED: {error}")
                    pushes.append({"label": label, "error": str(error)})
                    ok = False
                    continue
                after = memory_kib(worker)
                peak = after["VmHWM"]
                verdict = "under 100 MiB" if peak * 1024 < LIMIT_BYTES else "OVER 100 MiB"
                report(
                    f"{label:15} peak {mb(peak)} ({verdict}; resident before {mb(before['VmRSS'])}, "
                    f"+{mb(peak - before['VmRSS'])}), {size / 2**20 / seconds:.0f} MiB/s, "
                    f"HEAD says {stored} bytes"
                )
                pushes.append(
                    {
                        "label": label,
                        "peak_mib": round(peak / 1024, 1),
                        "before_mib": round(before["VmRSS"] / 1024, 1),
                        "mib_per_s": round(size / 2**20 / seconds),
                        "stored": stored,
                    }
                )
                ok &= peak * 1024 < LIMIT_BYTES and stored == size
    return {"engine": engine, "mib": mib, "pushes": pushes, "ok": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the pushed blob in MiB (default 1024)")
    return 0 if measure(parser.parse_args().mib, os.environ.get("DATABASE_URL"))["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
