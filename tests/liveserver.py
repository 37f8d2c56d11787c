"""The service run from outside, as a user runs it: a throwaway database, manage.py commands, gunicorn.

Shared by the scripts that drive a real server (conformance/run.py for `make conformance`,
bench/upload_memory.py) and by the tests that need a server of their own. Nothing here imports
Django: the scripts run before any settings exist, and the server is always another process.
"""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_database(database_url: str | None, workdir: Path, label: str = "throwaway"):
    """A DATABASE_URL of an empty database that is removed on leaving.

    Without ``database_url`` (or with a SQLite one): a SQLite file under ``workdir``. With a PostgreSQL
    URL: a new database on that server, named after the URL's database plus ``label`` and a random
    suffix, created through the server's ``postgres`` database and dropped at the end. The database
    the URL names is never touched, so pointing DATABASE_URL at real data is safe.
    """
    if not database_url or database_url.startswith("sqlite"):
        yield f"sqlite:///{workdir / 'db.sqlite3'}"
        return
    import psycopg  # only PostgreSQL needs it; it is in requirements/base.txt

    parts = urllib.parse.urlsplit(database_url)
    base = parts.path.lstrip("/") or "swr"
    name = f"{base}_{label}_{secrets.token_hex(4)}"[:63]
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    """Run `python manage.py ARGS` in the project with ``env`` added to this process's environment; its output.

    A failure raises RuntimeError with the command's output, which says why."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    port: int
    process: subprocess.Popen  # gunicorn's master
    log_path: Path

    @property
    def address(self) -> str:
        """host:port, as registry clients name a registry."""
        return f"127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """Process ids of gunicorn's workers (the master's children)."""
        return child_pids(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serve(command: list[str], env: dict, log_path: Path, *, port: int, within: float = 60, workers: int = 0):
    """Run ``command``, a server of the project listening on 127.0.0.1:``port``, from the project's folder;
    yields a Server once /healthz answers 200 (and, with ``workers``, once that many workers run), and stops
    it on leaving. RuntimeError, with the server's log, when it exits or does not answer within ``within``.

    ``env`` is added to this process's environment (a variable given as None is unset); settings are
    registry.settings unless ``env`` says otherwise. The log goes to ``log_path``: a pipe nobody reads
    would fill up and stall the server."""
    merged = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings", **env}
    environment = {name: value for name, value in merged.items() if value is not None}
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        server = Server(base=base, port=port, process=process, log_path=log_path)
        try:
            deadline = time.monotonic() + within
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited ({process.returncode}):\n{server.log()}")
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                        break
                except OSError:  # not listening yet, no worker yet, or not 200 (HTTPError)
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{command} gave no 200 on /healthz within {within} s:\n{server.log()}"
                        ) from None
                    time.sleep(0.1)
            # /healthz answered from one worker; wait for all of them, so that their ids are known.
            while len(server.workers()) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def gunicorn(env: dict, log_path: Path, *, workers: int = 2, port: int | None = None, within: float = 60):
    """gunicorn with the production configuration (gunicorn.conf.py) on 127.0.0.1; yields a Server once it
    answers (:func:`serve`)."""
    port = port or free_port()
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_LOG_LEVEL": env.get("GUNICORN_LOG_LEVEL", "warning"),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "registry.wsgi:application"]
    with serve(command, env, log_path, port=port, within=within, workers=workers) as server:
        yield server


def child_pids(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # The command name (field 2) is in parentheses and may hold spaces: the parent id follows the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (the peak resident size) of process ``pid``, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak_memory(pid: int) -> bool:
    """Set VmHWM of ``pid`` back to its VmRSS (Linux: `echo 5 > /proc/PID/clear_refs`); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def temporary_directory(prefix: str, keep: bool = False):
    """A fresh directory, removed on leaving unless ``keep``."""
    if keep:
        yield Path(tempfile.mkdtemp(prefix=prefix))
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


def get(url: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """GET ``url``; (status, headers, body), an error status included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
