"""What a new user meets first, tried as a new user would (issue 11, must-have 10): `make run`, its banner and
its log, the system checks every command runs, and Swagger UI's Authorize dialog."""

import logging
import os
import re
import select
import signal
import subprocess
import time
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from .helpers import ROOT, free_port, http_request


class TestSwaggerAuthorize:
    """Swagger UI lists the schemes of components.securitySchemes in their order; a token pasted into the
    first one was sent as `Authorization: swr_...` (the AK/SK scheme's header) and refused."""

    def document(self):
        return APIClient().get("/openapi.json").json()

    def test_the_token_scheme_comes_first_and_is_the_x_auth_token_header(self):
        schemes = self.document()["components"]["securitySchemes"]
        name, first = next(iter(schemes.items()))
        assert (first["type"], first["in"], first["name"]) == ("apiKey", "header", "X-Auth-Token"), name
        assert [s.get("name") for s in schemes.values()] == ["X-Auth-Token", "Authorization", "sessionid"]

    def test_every_operation_offers_the_token_first(self):
        document = self.document()
        schemes = document["components"]["securitySchemes"]
        token = next(name for name, scheme in schemes.items() if scheme.get("name") == "X-Auth-Token")
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                security = operation.get("security")
                if path in ("/", "/v2", "/v3/auth/tokens"):  # no credentials needed
                    assert not security or security == [{}], (path, method)
                else:
                    assert security[0] == {token: []}, (path, method, security)


@pytest.mark.django_db
def test_no_system_check_warns_on_sqlite_about_index_include_columns():
    """models.W040 (SQLite ignores INCLUDE columns) was printed by every command; it says nothing to act on."""
    out, err = StringIO(), StringIO()
    call_command("check", "--database", "default", stdout=out, stderr=err)
    assert "W040" not in out.getvalue() + err.getvalue()
    is_sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    assert ("models.W040" in settings.SILENCED_SYSTEM_CHECKS) == is_sqlite


def test_the_dev_server_does_not_log_4xx_requests_a_second_time():
    """swr.access writes one line per request; runserver's own line (4xx as WARNING) is not written too."""
    assert not logging.getLogger("django.server").isEnabledFor(logging.WARNING)
    assert logging.getLogger("django.server").isEnabledFor(logging.ERROR)
    assert logging.getLogger("swr.access").isEnabledFor(logging.INFO)


class MakeRun:
    """`make run` in its own process group, on a fresh SQLite file, a fresh folder for its blobs and key (so that
    its garbage collector never meets the developer's var/), and a spare port; its output is collected."""

    def __init__(self, tmp_path):
        self.port = free_port()
        env = {
            **{name: value for name, value in os.environ.items() if name != "SWR_BLOB_ROOT"},
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "SWR_VAR_DIR": str(tmp_path / "var"),
            "SWR_BLOB_STORAGE": "filesystem",
            "PYTHONUNBUFFERED": "1",
        }
        # -o: the virtualenv is taken as it is (it runs these tests), never re-installed.
        command = ["make", "--no-print-directory", "-o", ".venv/.base-installed", "run", f"PORT={self.port}"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.output = ""

    def read_until(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.output)) is None:
            assert self.process.poll() is None, f"make run ended:\n{self.output}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s:\n{self.output}"
            ready, _, _ = select.select([self.process.stdout], [], [], 1)
            if ready:
                self.output += os.read(self.process.stdout.fileno(), 65536).decode(errors="replace")
        return found

    def drain(self, seconds: float) -> None:
        """Collect what the server writes during ``seconds`` more (a line logged after its answer was sent)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if ready:
                self.output += os.read(self.process.stdout.fileno(), 65536).decode(errors="replace")

    def get(self, path: str, token: str) -> int:
        return http_request(f"http://127.0.0.1:{self.port}{path}", token=token).status

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)  # make, runserver and its autoreloaded child
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def make_run(tmp_path):
    run = MakeRun(tmp_path)
    yield run
    run.stop()


@pytest.mark.live
def test_make_run_prints_what_a_new_user_needs_and_logs_each_request_once(make_run):
    """The banner gives the token and the PROJECT_ID the SDK needs, and says how to get an AK/SK pair and a
    password and how to log in to the registry and push; no system check warning is printed; a 4xx is
    logged once (the access line), a 200 once."""
    exported = make_run.read_until(r"export TOKEN=(swr_\S+) PROJECT_ID=([0-9a-f]{32})\n")
    token, project_id = exported.groups()
    make_run.read_until(r"Booting worker with pid")  # gunicorn serves make run (it streams chunked uploads)
    assert f"Demo tenant 'demo' (project id {project_id})" in make_run.output
    assert "manage.py swr_accesskey --tenant demo --user demo" in make_run.output
    assert "manage.py swr_token --tenant demo --user demo --password" in make_run.output
    address = f"127.0.0.1:{make_run.port}"
    assert f"docker login {address} -u demo --password-stdin" in make_run.output
    assert f"docker://{address}/group/busybox:1.0" in make_run.output
    assert "W040" not in make_run.output
    assert "WARNINGS" not in make_run.output

    assert make_run.get("/v2/manage/namespaces/no-such-organization", token) == 404
    assert make_run.get(f"/v2/manage/projects/{project_id}/quotas", token) == 200
    make_run.read_until(r"/v2/manage/projects/\S+/quotas 200 user=demo tenant=demo\n")  # whose, in the plain format
    make_run.drain(1)
    lines = make_run.output.splitlines()
    assert len([line for line in lines if "no-such-organization" in line]) == 1, make_run.output
    assert len([line for line in lines if "/quotas" in line]) == 1, make_run.output
