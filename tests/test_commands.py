"""python manage.py swr_token and swr_accesskey: tenants, users, passwords, and what they print."""

import os
import pty
import select
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from swr.choices import PermissionLevel
from swr.models import AccessKey, ApiToken, Namespace, NamespacePermission, Tenant, User

from .helpers import ROOT, database_url, login, post

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def run(*args, stdin: str | None = None, command: str = "swr_token") -> list[str]:
    out = StringIO()
    options = {} if stdin is None else {"stdin": StringIO(stdin)}
    call_command(command, *args, stdout=out, **options)
    return out.getvalue().splitlines()


def test_creates_tenant_and_user_and_prints_a_working_token():
    lines = run("--tenant", "acme", "--user", "alice")
    user = User.objects.get(username="alice")
    assert user.tenant == Tenant.objects.get(name="acme")
    assert not user.is_tenant_admin
    token = lines[-1]
    assert " " not in token
    assert len(token) > 40
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=token)
    response = post(client, "/v2/manage/namespaces", {"namespace": "team"})
    assert response.status_code == 201


def test_reuses_existing_tenant_and_user_and_issues_a_new_token():
    first = run("--tenant", "acme", "--user", "alice")[-1]
    second = run("--tenant", "acme", "--user", "alice")[-1]
    assert first != second
    assert Tenant.objects.count() == 1
    assert User.objects.count() == 1
    assert User.objects.get().api_tokens.count() == 2


def test_tenant_admin_flag():
    run("--tenant", "acme", "--user", "root", "--tenant-admin")
    assert User.objects.get(username="root").is_tenant_admin


@pytest.mark.parametrize("command", ["swr_token", "swr_accesskey"])
def test_user_of_another_tenant_is_refused_before_anything_is_created(command):
    """`--tenant other --user alice` printed "Created tenant other" and then failed (the tenant rolled back).

    User names are global across tenants: the name is checked first, the error says so, nothing is
    printed or created, and the command fails (CommandError: exit status 1).
    """
    run("--tenant", "acme", "--user", "alice")
    out = StringIO()
    with pytest.raises(CommandError, match="belongs to tenant acme: user names are global across tenants") as info:
        call_command(command, "--tenant", "other", "--user", "alice", stdout=out)
    assert "Nothing was created" in str(info.value)
    assert out.getvalue() == ""
    assert list(Tenant.objects.values_list("name", flat=True)) == ["acme"]
    assert ApiToken.objects.count() == 1
    assert not AccessKey.objects.exists()


def test_a_refused_command_prints_nothing_of_what_it_rolled_back():
    """Every refusal after the start (here: an organization of another tenant) leaves nothing and says nothing else."""
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    out = StringIO()
    with pytest.raises(CommandError, match="another tenant"):
        call_command("swr_token", "--tenant", "globex", "--user", "bob", "--namespace", "group", stdout=out)
    assert out.getvalue() == ""
    assert not Tenant.objects.filter(name="globex").exists()
    assert not User.objects.filter(username="bob").exists()


def test_the_line_before_the_token_gives_the_project_id():
    lines = run("--tenant", "acme", "--user", "alice")
    tenant = Tenant.objects.get()
    alice = User.objects.get(username="alice")
    assert lines[-2].startswith(
        f"Token for alice (user id {alice.pk}, for grants) of tenant acme (project id {tenant.project_id}), "
        "valid until "
    )


def test_invalid_user_name_is_refused():
    with pytest.raises(CommandError, match="user ?name"):
        run("--tenant", "acme", "--user", "al ice")
    assert not Tenant.objects.exists()


class TestPassword:
    """`--password` gives a user the password that POST /v3/auth/tokens asks for (spec section 8)."""

    def test_read_from_standard_input_then_the_login_works(self):
        lines = run("--tenant", "acme", "--user", "alice", "--password", stdin=PASSWORD + "\n")
        assert PASSWORD not in "\n".join(lines)
        assert "Password set: alice can log in with POST /v3/auth/tokens" in "\n".join(lines)
        response = login("alice", PASSWORD, "acme")
        assert response.status_code == 201, response.content
        assert response["X-Subject-Token"].startswith("swr_")

    def test_changes_the_password_of_an_existing_user(self):
        run("--tenant", "acme", "--user", "alice", "--password", stdin="first password 1\n")
        run("--tenant", "acme", "--user", "alice", "--password", stdin=PASSWORD + "\r\n")
        assert login("alice", "first password 1", "acme").status_code == 401
        assert login("alice", PASSWORD, "acme").status_code == 201

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ("", "The password is empty"),
            ("\n", "The password is empty"),
            ("short\n", "too short"),
            ("alice123\n", "too similar|too common"),
        ],
    )
    def test_a_refused_password_leaves_nothing(self, given, message):
        with pytest.raises(CommandError, match=message):
            run("--tenant", "acme", "--user", "alice", "--password", stdin=given)
        assert not User.objects.exists()
        assert not Tenant.objects.exists()

    def test_without_the_option_a_new_user_has_no_password(self):
        run("--tenant", "acme", "--user", "alice")
        assert not User.objects.get().has_usable_password()


def run_in_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run manage.py with a pseudo-terminal as its controlling terminal; type each answer at each prompt."""
    # The test settings, as this process: the same (fast) password hasher.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings_test", "DATABASE_URL": database_url()}
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes manage.py
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "manage.py", *args], env)
    output = b""

    def read(until: bytes | None) -> bytes:
        nonlocal output
        while until is None or until not in output:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, f"no answer from the command: {output!r}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child has exited and closed the terminal
                chunk = b""
            if not chunk:
                assert until is None, f"the command ended before asking: {output!r}"
                return output
            output += chunk
        return output

    try:
        for number, answer in enumerate(answers, start=1):
            read(b"Password" if number == 1 else b"(again): ")
            os.write(fd, answer.encode() + b"\n")
        read(None)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
class TestPasswordAtATerminal:
    def test_asked_twice_and_never_echoed(self):
        code, output = run_in_terminal(
            ["swr_token", "--tenant", "acme", "--user", "alice", "--password"], [PASSWORD] * 2
        )
        assert code == 0, output
        assert "Password for alice: " in output
        assert PASSWORD not in output
        assert login("alice", PASSWORD, "acme").status_code == 201

    def test_two_different_answers_change_nothing(self):
        code, output = run_in_terminal(
            ["swr_token", "--tenant", "acme", "--user", "alice", "--password"], [PASSWORD, PASSWORD + "!"]
        )
        assert code == 1, output
        assert "The two passwords differ" in output
        assert PASSWORD not in output
        assert not User.objects.exists()


def test_namespace_option_creates_it_once_with_the_user_as_manager():
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    namespace = Namespace.objects.get()
    assert namespace.name == "group"
    assert NamespacePermission.objects.get(namespace=namespace).level == PermissionLevel.MANAGE


def test_namespace_option_with_invalid_name():
    with pytest.raises(CommandError, match="Invalid organization name"):
        run("--tenant", "acme", "--user", "alice", "--namespace", "Bad Name")


def test_namespace_of_another_tenant_is_refused():
    run("--tenant", "acme", "--user", "alice", "--namespace", "group")
    with pytest.raises(CommandError, match="another tenant"):
        run("--tenant", "globex", "--user", "bob", "--namespace", "group")


def test_making_an_existing_user_a_tenant_administrator_says_so():
    run("--tenant", "acme", "--user", "alice")
    lines = run("--tenant", "acme", "--user", "alice", "--tenant-admin")
    assert "alice is now an administrator of tenant acme." in lines
    assert User.objects.get(username="alice").is_tenant_admin


def test_the_access_key_command_names_the_user_id_for_grants():
    out = StringIO()
    call_command("swr_accesskey", "--tenant", "acme", "--user", "alice", stdout=out)
    alice = User.objects.get(username="alice")
    assert f"Access key for alice (user id {alice.pk}, for grants) of tenant acme" in out.getvalue()
