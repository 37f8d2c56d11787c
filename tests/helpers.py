"""What the tests share: the SWR error body assertion (spec section 1), the actors of their setup, JSON and signed
requests, the admin's forms, and real servers (gunicorn, runserver) started on the test database and called over
HTTP."""

import contextlib
import http.client
import json
import sys
import urllib.error
import urllib.request
from typing import NamedTuple

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from rest_framework.test import APIClient

from swr.audit import Actor, Source

from . import liveserver
from .liveserver import ROOT, free_port  # noqa: F401 (the tests take them from here)

ERROR_KEYS = {"error_code", "error_msg", "errorCode", "errorMessage", "details"}


def assert_swr_error(response, status: int, code: str) -> dict:
    """The answer has ``status`` and exactly the SWR error body with ``code``; returns the body.

    ``response``: a test client's response, or the (status, headers, body) of an answer over HTTP."""
    if isinstance(response, tuple):
        got, headers, content = response
    else:
        got, headers, content = response.status_code, response.headers, response.content
    assert got == status, (got, content[:500])
    assert headers["Content-Type"].startswith("application/json"), content[:500]
    body = json.loads(content)
    assert set(body) == ERROR_KEYS, body
    assert body["error_code"] == code, body
    assert body["errorCode"] == code
    assert body["error_msg"] == body["errorMessage"]
    assert isinstance(body["error_msg"], str)
    assert body["error_msg"]
    assert isinstance(body["details"], list)
    return body


# The actor of a test's own setup: an operator's management command (swr.audit.Actor).
OPERATOR = Actor.command()


def api_actor(user) -> Actor:
    """``user`` calling through the API, held to their grants."""
    return Actor(user=user, source=Source.API)


# Requests through Django's test client.


def send(client, method: str, url: str, body, **extra):
    """``body`` as JSON with Content-Type application/json (a str or bytes body is sent as it is)."""
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.generic(method.upper(), url, raw, content_type="application/json", **extra)


def post(client, url: str, body, **extra):
    """POST ``body`` as JSON (see ``send``)."""
    return send(client, "POST", url, body, **extra)


def grant_entry(user, auth=1) -> dict:
    """One entry of a grants body (POST or PATCH .../access): ``user`` at level ``auth``."""
    return {"user_id": str(user.pk), "user_name": user.username, "auth": auth}


LOGIN = "/v3/auth/tokens"
PASSWORD = "s3cret-Passw0rd"


def login_body(name="alice", password=PASSWORD, domain="acme") -> dict:
    """The body of a password login (POST /v3/auth/tokens)."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "password": password, "domain": {"name": domain}}},
            }
        }
    }


def login(name="alice", password=PASSWORD, domain="acme", **extra):
    """A password login through a client of its own."""
    return post(APIClient(), LOGIN, login_body(name, password, domain), **extra)


def admin_login(username, password):
    """The admin's login form, posted by a client of its own."""
    return Client().post("/admin/login/?next=/admin/", {"username": username, "password": password})


def sign(
    ak,
    sk,
    method,
    path,
    *,
    query=(),
    body=b"",
    content_type="application/json",
    date=None,
    project_id=None,
    content_hash=None,
    extra=None,
    host="testserver",
):
    """Headers the SDK's Signer produces for this request to http://``host`` (``content_hash``: an
    X-Sdk-Content-Sha256 the caller declares, which the Signer then signs instead of hashing the body)."""
    headers = {"Content-Type": content_type, **(extra or {})}
    if content_hash is not None:
        headers["X-Sdk-Content-Sha256"] = content_hash
    if date is not None:
        headers["X-Sdk-Date"] = date.strftime("%Y%m%dT%H%M%SZ")
    if project_id:
        headers["X-Project-Id"] = project_id
    request = SdkRequest(
        method=method,
        schema="http",
        host=host,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
    )
    Signer(BasicCredentials(ak, sk)).sign(request)
    return request.header_params


def send_signed(method, path, headers, *, query="", body=b"", content_type="application/json"):
    """The request with the headers ``sign`` gave, through a test client of its own."""
    meta = {}
    for name, value in headers.items():
        if name.lower() == "content-type":
            continue
        meta["HTTP_" + name.upper().replace("-", "_")] = value
    url = path + (f"?{query}" if query else "")
    return APIClient().generic(method, url, body, content_type=content_type, **meta)


# The admin site.


def perms(*names):
    """Permission objects from "app_label.codename" names."""
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def view_permissions():
    """The view permission of every model of the admin site."""
    return [
        Permission.objects.get(content_type__app_label=model._meta.app_label, codename=f"view_{model._meta.model_name}")
        for model in admin.site._registry
    ]


def changelist_url(model) -> str:
    """The URL of ``model``'s list in the admin."""
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def admin_form(data, **inlines):
    """``data``, an admin form's fields, with each inline formset of ``inlines``: its management form (required,
    even when the formset is empty) and its forms, each a dict of fields: ``admin_form(data, permissions=[])``."""
    for prefix, forms in inlines.items():
        data |= {f"{prefix}-TOTAL_FORMS": len(forms), f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MIN_NUM_FORMS": 0}
        data[f"{prefix}-MAX_NUM_FORMS"] = 1000
        for number, form in enumerate(forms):
            data |= {f"{prefix}-{number}-{name}": value for name, value in form.items()}
    return data


def admin_action(client, model, action, pks, *, follow=False, **extra):
    """Run the admin action ``action`` on the rows ``pks`` of ``model``'s list, as its form posts it."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": 0, **extra}
    return client.post(changelist_url(model), data, follow=follow)


# Over real HTTP.


class Answer(NamedTuple):
    """An answer over HTTP; its headers are looked up by name in any case."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_request(url, method=None, *, body=None, raw=None, token=None, headers=None, timeout=30) -> Answer:
    """One request on a connection of its own; its answer, an error status included.

    ``body`` is sent as JSON, ``raw`` as it is (with Content-Type application/json unless ``headers`` name
    another); the method is POST with a body and GET without, unless given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and not request.has_header("Content-type"):
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def database_url() -> str:
    """The test database (once pytest-django set it up) as a DATABASE_URL, for a server in another process."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def serving(command, *, port, log_path, env=None, within=30):
    """Run ``command``, a server of the project that listens on 127.0.0.1:``port``, from the project's directory;
    yields its base URL once /healthz answers 200, and stops it on leaving (tests/liveserver.py ``serve``).

    Its settings are registry.settings on the test database, with no connection kept between requests; ``env``
    overrides them and adds to them (a variable given as None is unset)."""
    env = {"DJANGO_CONN_MAX_AGE": "0", **(env or {})}
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = database_url()
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(liveserver.serve(command, env, log_path, port=port, within=within))
        except RuntimeError as error:  # it exited or never answered: the log says why
            pytest.fail(str(error))
        yield server.base


@contextlib.contextmanager
def start_gunicorn(log_path, *, workers=1, worker_class=None, env=None, plain_command=False):
    """gunicorn serving the project on a free port; yields its base URL (``env``: see ``serving``).

    Started as `make serve` does (-c gunicorn.conf.py, the log at level warning; ``worker_class`` and the GUNICORN_*
    variables of ``env`` set it), or with ``plain_command`` as the README's `gunicorn registry.wsgi:application`,
    with --bind and --workers (gunicorn then reads ./gunicorn.conf.py by itself)."""
    port = free_port()
    bind = f"127.0.0.1:{port}"
    if plain_command:
        options = ["--bind", bind, "--workers", str(workers)]
    else:
        options = ["-c", "gunicorn.conf.py"]
        env = {"GUNICORN_WORKERS": str(workers), "GUNICORN_LOG_LEVEL": "warning", **(env or {}), "GUNICORN_BIND": bind}
    if worker_class:
        env = {**(env or {}), "GUNICORN_WORKER_CLASS": worker_class}
    command = [sys.executable, "-m", "gunicorn", *options, "registry.wsgi:application"]
    with serving(command, port=port, log_path=log_path, env=env) as base:
        yield base
