"""`make conformance`: the official OCI distribution-spec conformance suite against the service.

For each spec version in CONFORMANCE_VERSIONS (default "1.1 dev"; OCI_VERSION, when set, names the
only one), on a fresh database and a fresh var/ folder (secret key, token key, blobs):

1. a throwaway database: a SQLite file in a temporary folder, or, with DATABASE_URL set to
   PostgreSQL, a new database on that server (created and dropped here; the one the URL names is
   left alone), migrated;
2. tenant `conf`, user `conf` with a random password and the organization `conformance` that the
   user manages: `manage.py swr_token --tenant conf --user conf --namespace conformance --password`,
   the password on standard input;
3. gunicorn with gunicorn.conf.py on a spare port of 127.0.0.1 (SWR_REGISTRY_HOST set to it);
4. the suite at $OCI_CONFORMANCE (default ../shared/tools/oci-conformance when it exists, else
   `conformance` on the PATH, as `go install` names it) with OCI_REGISTRY=127.0.0.1:PORT,
   OCI_TLS=disabled, OCI_REPO1=conformance/repo1, OCI_REPO2=conformance/repo2, OCI_USERNAME and
   OCI_PASSWORD of that user (it logs in through the registry's WWW-Authenticate challenge) and
   OCI_RESULTS_DIR=var/conformance/<engine>/<version>/ (results.yaml, junit.xml, report.html, the
   suite's output and the server's log). Other OCI_* variables of the environment reach the suite
   unchanged (OCI_DATA_SPARSE=true, OCI_LOG=debug, OCI_FILTER_TEST=...).

`make conformance-s3` (``--storage s3``) does the same with the blobs on SeaweedFS (`weed mini`,
tests/seaweed.py, started here with a bucket of its own for each run): the server gets SWR_BLOB_STORAGE=s3
and the AWS_* variables, and answers blob GETs with 307 to signed URLs of the store (SWR_BLOB_REDIRECT, the
default on S3), except for OCI_VERSION=dev, whose suite wants Docker-Content-Digest on the answer with the
bytes (see ``blob_env``); results under var/conformance/<engine>-s3/<version>/.

Prints the suite's summary and the failed tests of each run, and exits non-zero when any test of
any run failed or was skipped for a reason not in EXPECTED_SKIPS, or a run did not complete (the
suite exits 0 when it cannot even load its configuration, so a run counts only with its junit.xml).
"""

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.liveserver import free_port, gunicorn, manage, temporary_directory, throwaway_database  # noqa: E402
from tests.seaweed import seaweedfs  # noqa: E402

SHARED_SUITE = ROOT.parent / "shared" / "tools" / "oci-conformance"
RESULTS = ROOT / "var" / "conformance"
NAMESPACE = "conformance"
TENANT = USER = "conf"
# Longest a run of the suite may take: a server that stops answering must not hang CI.
TIMEOUT = int(os.environ.get("CONFORMANCE_TIMEOUT", "1200"))
WORKERS = int(os.environ.get("CONFORMANCE_WORKERS", "3"))
SHOW_FAILURES = int(os.environ.get("CONFORMANCE_SHOW_FAILURES", "60"))
# The skips this service is known for, by the test's last name and the start of the suite's reason; any other
# skip fails the run, as a skip is not a pass (a registry that ignored a test's request, say "bytes=500-0",
# turned a passing range test into "range request unsupported", a skip).
EXPECTED_SKIPS = {
    # A mount without ?from= is refused, as the spec allows: the client uploads (distribution-spec, "Mounting
    # a blob from another repository").
    "blob-mount-anonymous": "registry returned status 202, fell back to blob POST+PUT",
    "blob-post-cancel": "",  # disabled by OCI_VERSION 1.1: the test is newer than that version
}


@dataclass
class Outcome:
    version: str
    results_dir: Path
    exit_code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (test, first line of its message)
    skips: list[tuple[str, str]] = field(default_factory=list)
    problem: str = ""  # why the run did not complete

    @property
    def passed(self) -> int:
        c = self.counts
        return c["tests"] - c["failures"] - c["errors"] - c["skipped"] - c["disabled"]

    @property
    def ok(self) -> bool:
        return (
            not self.problem
            and self.exit_code == 0
            and self.counts["failures"] == 0
            and self.counts["errors"] == 0
            and not self.unexpected_skips
            and self.passed > 0
        )

    @property
    def unexpected_skips(self) -> list[tuple[str, str]]:
        def expected(name: str, message: str) -> bool:
            reason = EXPECTED_SKIPS.get(name.rsplit("/", 1)[-1])
            return reason is not None and message.startswith(reason)

        return [(name, message) for name, message in self.skips if not expected(name, message)]


def log(message: str) -> None:
    print(f"[conformance] {message}", flush=True)


def suite_path() -> Path | None:
    given = os.environ.get("OCI_CONFORMANCE")
    if given:
        return Path(given).absolute()  # the suite runs from its results folder
    if SHARED_SUITE.is_file():
        return SHARED_SUITE
    found = shutil.which("conformance")
    return Path(found) if found else None


def versions() -> list[str]:
    if os.environ.get("OCI_VERSION"):
        return [os.environ["OCI_VERSION"]]
    return os.environ.get("CONFORMANCE_VERSIONS", "1.1 dev").split()


def engine(database_url: str | None) -> str:
    return "postgresql" if database_url and database_url.startswith("postgres") else "sqlite"


def read_junit(outcome: Outcome) -> None:
    """Counts (the suite's own: its summary shows the same) and the failed and skipped tests, from junit.xml."""
    tree = ET.parse(outcome.results_dir / "junit.xml")
    suites = tree.getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    outcome.counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped", "disabled")}
    for case in suite.iter("testcase"):
        status = case.get("status", "")
        message = (case.findtext("system-out") or "").strip().splitlines()
        entry = (case.get("name", "?"), message[0][:300] if message else "")
        if status in ("failure", "error"):
            outcome.failures.append(entry)
        elif status == "skipped":
            outcome.skips.append(entry)


def where(database_url: str | None, storage: str) -> str:
    """The run's label and results folder: sqlite, postgresql, sqlite-s3, postgresql-s3."""
    return engine(database_url) + ("-s3" if storage == "s3" else "")


def blob_env(storage: str, version: str, workdir: Path, stack: contextlib.ExitStack) -> dict:
    """The server's blob settings: the folder of var/ (nothing to set), or a SeaweedFS started for this run."""
    if storage != "s3":
        return {}
    store = stack.enter_context(seaweedfs(workdir / "seaweedfs"))
    log(f"OCI_VERSION={version}: SeaweedFS at {store.endpoint}, bucket {store.bucket}")
    env = store.env()
    if version == "dev":
        # The dev suite wants Docker-Content-Digest on the answer that carries a blob's bytes: after a 307 that is
        # the object store's, which cannot send that header (all of its 107 failures with the redirect). This run
        # has the registry serve the bytes from the store instead; OCI_VERSION 1.1 runs with the redirect.
        env["SWR_BLOB_REDIRECT"] = "false"
    return env


def run_one(suite: Path, version: str, database_url: str | None, storage: str = "filesystem") -> Outcome:
    results_dir = RESULTS / where(database_url, storage) / version
    shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir(parents=True)
    outcome = Outcome(version=version, results_dir=results_dir)
    password = "conf-" + secrets.token_urlsafe(18)
    port = free_port()
    with (
        temporary_directory("swr-conformance-") as workdir,
        throwaway_database(database_url, workdir, "conformance") as url,
        contextlib.ExitStack() as stack,
    ):
        env = {
            **blob_env(storage, version, workdir, stack),
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "SWR_VAR_DIR": str(workdir / "var"),
            "SWR_REGISTRY_HOST": f"127.0.0.1:{port}",
        }
        log(f"OCI_VERSION={version}: fresh {engine(database_url)} database, blobs on {storage}, migrating")
        manage(env, "migrate", "--noinput", "-v0")
        manage(
            env,
            *("swr_token", "--tenant", TENANT, "--user", USER, "--namespace", NAMESPACE, "--password"),
            stdin=password + "\n",
        )
        with gunicorn(env, results_dir / "server.log", workers=WORKERS, port=port) as server:
            log(f"OCI_VERSION={version}: server {server.base}; running {suite}")
            suite_env = {
                **os.environ,
                "OCI_REGISTRY": server.address,
                "OCI_TLS": "disabled",
                "OCI_REPO1": f"{NAMESPACE}/repo1",
                "OCI_REPO2": f"{NAMESPACE}/repo2",
                "OCI_USERNAME": USER,
                "OCI_PASSWORD": password,
                "OCI_VERSION": version,
                "OCI_RESULTS_DIR": str(results_dir),
            }
            suite_env.pop("OCI_CONFIGURATION", None)  # the configuration is this environment, nothing else
            with (results_dir / "output.txt").open("wb") as output:
                try:
                    # From the results folder: the suite also reads ./oci-conformance.yaml when one is there.
                    completed = subprocess.run(
                        [str(suite)], cwd=results_dir, env=suite_env, stdout=output, stderr=subprocess.STDOUT,
                        timeout=TIMEOUT,
                    )  # fmt: skip
                    outcome.exit_code = completed.returncode
                except subprocess.TimeoutExpired:
                    outcome.problem = f"the suite did not finish within {TIMEOUT} s (CONFORMANCE_TIMEOUT)"
    if (results_dir / "junit.xml").is_file():
        read_junit(outcome)
    elif not outcome.problem:
        outcome.problem = "the suite wrote no junit.xml (see output.txt)"
    return outcome


def summary_block(results_dir: Path) -> str:
    """The suite's own summary: from 'OCI Conformance Result' to the end of its output."""
    text = (results_dir / "output.txt").read_text(errors="replace")
    match = re.search(r"^OCI Conformance Result:.*", text, flags=re.MULTILINE | re.DOTALL)
    return match.group(0).rstrip() if match else text[-3000:].rstrip()


def report(outcome: Outcome, database_url: str | None, storage: str) -> None:
    where = f"{engine(database_url)}, blobs on {storage}, OCI_VERSION={outcome.version}"
    print(f"\n===== OCI conformance ({where}) =====")
    print(summary_block(outcome.results_dir))
    if outcome.failures:
        print(f"\nFailed tests ({len(outcome.failures)}; the first {SHOW_FAILURES} shown):")
        for name, message in outcome.failures[:SHOW_FAILURES]:
            print(f"  FAIL {name}\n       {message}")
    if outcome.skips:
        print(f"\nSkipped tests ({len(outcome.skips)}), with the suite's reason:")
        for name, message in outcome.skips[:SHOW_FAILURES]:
            print(f"  skip {name}: {message or '(disabled by the spec version or a failed dependency)'}")
    for name, message in outcome.unexpected_skips:
        print(f"  UNEXPECTED SKIP (fails the run; EXPECTED_SKIPS lists the known ones) {name}: {message}")
    print(f"\nResults, the suite's output and the server's log: {outcome.results_dir.relative_to(ROOT)}/")
    if outcome.problem:
        print(f"conformance ({where}) did not complete: {outcome.problem}")
    elif outcome.counts:
        c = outcome.counts
        print(
            f"conformance ({where}): {outcome.passed} passed, {c['failures'] + c['errors']} failed, "
            f"{c['skipped']} skipped, {c['disabled']} disabled, of {c['tests']}; suite exit status {outcome.exit_code}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="The OCI conformance suite against a fresh server.")
    parser.add_argument(
        "--storage", choices=["filesystem", "s3"], default="filesystem",
        help="where the server keeps blobs: a folder (default) or a SeaweedFS started for the run",
    )  # fmt: skip
    storage = parser.parse_args().storage
    suite = suite_path()
    if suite is not None and not suite.is_file():
        print(f"OCI_CONFORMANCE={suite}: no such program", file=sys.stderr)
        return 2
    if suite is None:
        print(
            "The OCI conformance suite was not found. Build it with Go:\n"
            "  go install github.com/opencontainers/distribution-spec/conformance@main\n"
            "and point OCI_CONFORMANCE at the program:\n"
            "  OCI_CONFORMANCE=$(go env GOPATH)/bin/conformance make conformance",
            file=sys.stderr,
        )
        return 2
    database_url = os.environ.get("DATABASE_URL") or None
    outcomes = []
    for version in versions():
        try:
            outcome = run_one(suite, version, database_url, storage)
        except RuntimeError as error:  # the service did not migrate, create the user or start
            print(f"\nconformance (OCI_VERSION={version}) could not start the service:\n{error}", file=sys.stderr)
            return 1
        report(outcome, database_url, storage)
        outcomes.append(outcome)
    total_passed = sum(o.passed for o in outcomes if o.counts)
    total_failed = sum(o.counts["failures"] + o.counts["errors"] for o in outcomes if o.counts)
    failed_runs = [o.version for o in outcomes if not o.ok]
    print()
    label = f"{engine(database_url)}, blobs on {storage},"
    if failed_runs:
        print(f"OCI conformance FAILED on {label} for OCI_VERSION {', '.join(failed_runs)}")
    else:
        print(f"OCI conformance passed on {label} for OCI_VERSION {', '.join(versions())}")
    print(f"conformance: {total_passed} passed, {total_failed} failed")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
