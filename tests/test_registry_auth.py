"""The registry's authentication (spec section 9; issue 13 must-have 3): the token endpoint, the four kinds of
credentials, the bearer tokens and the challenge, on probes of the auth contract (tests/registry_probe_urls.py)
and over real HTTP."""

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from swr import services
from swr.choices import PermissionLevel
from swr.models import NamespacePermission, User

from .helpers import OPERATOR

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.registry_probe_urls")]

PASSWORD = "s3cret-Passw0rd"
TOKEN_URL = "/service/token"


def basic(username: str, password: str) -> dict:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def public_key():
    private = serialization.load_pem_private_key(settings.SWR_REGISTRY_TOKEN_KEY.encode(), password=None)
    return private.public_key()


@pytest.fixture(autouse=True)
def registry_host(settings):
    """The registry's host as SWR_REGISTRY_HOST names it (unset, it is the request's host: tested in
    tests/test_registry_api.py)."""
    settings.SWR_REGISTRY_HOST = "registry.example.test"


def decode(token: str, audience: str | None = None) -> dict:
    """The claims of a token, checked as a registry that trusts this service's key would check them."""
    return jwt.decode(token, public_key(), algorithms=["ES256"], audience=audience or settings.SWR_REGISTRY_HOST)


def access_of(token: str, audience: str | None = None) -> dict[str, list[str]]:
    return {f"{e['type']}:{e['name']}": e["actions"] for e in decode(token, audience)["access"] if e["actions"]}


def oci_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert [e["code"] for e in body["errors"]] == [code], body
    assert body["errors"][0]["message"]
    return body


def get_token(headers: dict | None = None, *scopes: str, client=None):
    query = urllib.parse.urlencode([("service", settings.SWR_REGISTRY_HOST), *(("scope", s) for s in scopes)])
    return (client or Client()).get(f"{TOKEN_URL}?{query}", **(headers or {}))


def token_for(headers: dict, *scopes: str) -> str:
    response = get_token(headers, *scopes)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def signed(claims: dict, *, key=None, algorithm="ES256") -> str:
    """A token with ``claims`` over valid defaults, signed by ``key`` (default: this service's own)."""
    now = int(time.time())
    full = {
        "iss": "swr-registry-token-service",
        "sub": "",
        "aud": settings.SWR_REGISTRY_HOST,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "test",
        "access": [],
        **claims,
    }
    if key is None:
        key = serialization.load_pem_private_key(settings.SWR_REGISTRY_TOKEN_KEY.encode(), password=None)
    return jwt.encode(full, key, algorithm=algorithm)


def probe(actions: str, name: str, headers: dict | None = None, **query) -> object:
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return Client().get(f"/probe/repository/{actions}/{name}{suffix}", **(headers or {}))


def challenge_params(response) -> dict:
    header = response["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


@pytest.fixture
def alice(owner):
    """Alice: creator of organization 'group', so manage (7) on it."""
    owner.set_password(PASSWORD)
    owner.save()
    return owner


@pytest.fixture
def reader(make_user, tenant, namespace):
    user = make_user("rita", tenant)
    user.set_password(PASSWORD)
    user.save()
    NamespacePermission.objects.create(user=user, namespace=namespace, level=PermissionLevel.READ)
    return user


@pytest.fixture
def repositories(namespace):
    return {
        "web": services.repository_create(namespace=namespace, name="web", is_public=False, actor=OPERATOR),
        "pub": services.repository_create(namespace=namespace, name="pub", is_public=True, actor=OPERATOR),
    }


@pytest.fixture
def access_key(alice):
    key, secret = services.access_key_issue(user=alice, actor=OPERATOR)
    return key, secret


def long_term_password(access_key: str, secret_key: str) -> str:
    """Spec section 9: the lowercase hex of HMAC-SHA256(key = SK, message = AK)."""
    return hmac.new(secret_key.encode(), access_key.encode(), hashlib.sha256).hexdigest()


class TestTokenEndpointCredentials:
    """GET /service/token with each kind of credential (spec section 9)."""

    def test_password(self, alice, repositories):
        response = get_token(basic("alice", PASSWORD), "repository:group/web:pull,push")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
        assert body["token"] == body["access_token"]
        assert body["expires_in"] == int(settings.SWR_REGISTRY_TOKEN_LIFETIME.total_seconds())
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
        assert response["Cache-Control"] == "no-store"
        claims = decode(body["token"])
        assert claims["sub"] == str(alice.pk)
        assert claims["aud"] == settings.SWR_REGISTRY_HOST
        assert claims["exp"] - claims["iat"] == body["expires_in"]
        assert {"iss", "nbf", "jti"} <= set(claims)
        assert jwt.get_unverified_header(body["token"])["alg"] == "ES256"
        assert access_of(body["token"]) == {"repository:group/web": ["pull", "push"]}

    def test_api_token_as_password(self, alice, repositories):
        _, raw = services.token_issue(user=alice, actor=OPERATOR)
        token = token_for(basic("alice", raw), "repository:group/web:pull")
        assert decode(token)["sub"] == str(alice.pk)
        assert access_of(token) == {"repository:group/web": ["pull"]}

    def test_api_token_of_another_user_is_refused(self, alice, reader):
        _, raw = services.token_issue(user=alice, actor=OPERATOR)
        oci_error(get_token(basic("rita", raw)), 401, "UNAUTHORIZED")

    def test_revoked_api_token(self, alice):
        token, raw = services.token_issue(user=alice, actor=OPERATOR)
        services.token_revoke(token=token, actor=OPERATOR)
        oci_error(get_token(basic("alice", raw)), 401, "UNAUTHORIZED")

    def test_expired_api_token(self, alice):
        _, raw = services.token_issue(user=alice, lifetime=timedelta(seconds=-1), actor=OPERATOR)
        oci_error(get_token(basic("alice", raw)), 401, "UNAUTHORIZED")

    @pytest.mark.parametrize("prefix", ["cn-north-4", "my-project", "x"])
    def test_long_term_login(self, alice, access_key, repositories, prefix):
        key, secret = access_key
        token = token_for(
            basic(f"{prefix}@{key.access_key}", long_term_password(key.access_key, secret)),
            "repository:group/web:pull,push,delete",
        )
        assert decode(token)["sub"] == str(alice.pk)
        assert access_of(token) == {"repository:group/web": ["pull", "push", "delete"]}

    def test_long_term_login_with_a_wrong_signature(self, access_key):
        key, secret = access_key
        wrong = long_term_password(key.access_key, secret + "x")
        oci_error(get_token(basic(f"cn-north-4@{key.access_key}", wrong)), 401, "UNAUTHORIZED")
        upper = long_term_password(key.access_key, secret).upper()
        oci_error(get_token(basic(f"cn-north-4@{key.access_key}", upper)), 401, "UNAUTHORIZED")

    def test_disabled_key_reads_as_an_unknown_one(self, access_key):
        key, secret = access_key
        password = long_term_password(key.access_key, secret)
        key.is_active = False
        key.save()
        disabled = oci_error(get_token(basic(f"cn-north-4@{key.access_key}", password)), 401, "UNAUTHORIZED")
        unknown = oci_error(get_token(basic("cn-north-4@AAAAAAAAAAAAAAAAAAAA", password)), 401, "UNAUTHORIZED")
        assert disabled == unknown

    def test_key_of_a_deactivated_user(self, alice, access_key):
        key, secret = access_key
        alice.is_active = False
        alice.save()
        response = get_token(basic(f"cn-north-4@{key.access_key}", long_term_password(key.access_key, secret)))
        oci_error(response, 401, "UNAUTHORIZED")

    def test_wrong_password(self, alice):
        response = get_token(basic("alice", "wrong"))
        oci_error(response, 401, "UNAUTHORIZED")
        assert response["WWW-Authenticate"].startswith("Basic realm=")

    def test_unknown_user(self, db):
        oci_error(get_token(basic("nobody", PASSWORD)), 401, "UNAUTHORIZED")

    def test_malformed_basic_header(self, alice):
        response = get_token({"HTTP_AUTHORIZATION": "Basic !!!not-base64"})
        oci_error(response, 401, "UNAUTHORIZED")
        not_utf8 = base64.b64encode(b"alice:\xff\xfe").decode()
        oci_error(get_token({"HTTP_AUTHORIZATION": f"Basic {not_utf8}"}), 401, "UNAUTHORIZED")
        oci_error(
            get_token({"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice").decode()}), 401, "UNAUTHORIZED"
        )

    @pytest.mark.parametrize("username", ["ali\x00ce", "x@AK\x00", "a" * 256])
    def test_user_names_no_user_can_have(self, alice, username):
        """A NUL cannot be looked up in PostgreSQL, nor a name longer than the lockout's column counted: 401."""
        oci_error(get_token(basic(username, PASSWORD)), 401, "UNAUTHORIZED")

    @pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "é.é.é"])
    def test_garbage_bearer_tokens(self, db, token):
        response = probe("pull", "group/web", {"HTTP_AUTHORIZATION": f"Bearer {token}"})
        oci_error(response, 401, "UNAUTHORIZED")

    def test_docker_login_without_scope(self, alice):
        """docker login asks for a token without a scope: 200 once the credentials are good."""
        response = Client().get(
            f"{TOKEN_URL}?account=alice&client_id=docker&offline_token=true&service={settings.SWR_REGISTRY_HOST}",
            **basic("alice", PASSWORD),
        )
        assert response.status_code == 200
        assert decode(response.json()["token"])["access"] == []

    def test_no_credentials(self, db):
        response = get_token(None, "repository:group/pub:pull")
        oci_error(response, 401, "UNAUTHORIZED")
        assert response["WWW-Authenticate"].startswith("Basic realm=")

    def test_no_credentials_with_anonymous_pull(self, repositories, settings):
        settings.SWR_ANONYMOUS_PULL = True
        token = token_for({}, "repository:group/pub:pull,push", "repository:group/web:pull")
        assert decode(token)["sub"] == ""
        assert access_of(token) == {"repository:group/pub": ["pull"]}


class TestScopes:
    def test_scopes_are_intersected_with_the_permissions(self, reader, repositories):
        token = token_for(basic("rita", PASSWORD), "repository:group/web:pull,push,delete")
        assert access_of(token) == {"repository:group/web": ["pull"]}

    def test_several_scope_parameters_each_a_list(self, alice, repositories, make_tenant, make_user):
        other = services.namespace_create(name="elsewhere", tenant=make_tenant("globex"), actor=OPERATOR)
        services.repository_create(namespace=other, name="secret", is_public=False, actor=OPERATOR)
        token = token_for(
            basic("alice", PASSWORD),
            "repository:group/web:pull repository:group/pub:pull,push",
            "repository:elsewhere/secret:pull",
            "repository:group/web:push",
            "registry:catalog:*",
        )
        assert access_of(token) == {
            "repository:group/web": ["pull", "push"],
            "repository:group/pub": ["pull", "push"],
            "registry:catalog": ["*"],
        }
        denied = {f"{e['type']}:{e['name']}": e["actions"] for e in decode(token).get("denied", [])}
        assert denied == {"repository:elsewhere/secret": ["pull"]}

    def test_push_to_a_new_repository_of_an_organization_one_may_edit(self, alice, namespace):
        token = token_for(basic("alice", PASSWORD), "repository:group/brand/new:pull,push")
        assert access_of(token) == {"repository:group/brand/new": ["pull", "push"]}

    def test_push_into_a_missing_organization_gets_nothing(self, alice):
        token = token_for(basic("alice", PASSWORD), "repository:nogroup/web:pull,push")
        assert access_of(token) == {}

    def test_star_asks_for_every_action(self, alice, repositories):
        token = token_for(basic("alice", PASSWORD), "repository:group/web:*")
        assert access_of(token) == {"repository:group/web": ["pull", "push", "delete"]}

    def test_malformed_scope(self, alice):
        oci_error(get_token(basic("alice", PASSWORD), "repository-group-web"), 400, "UNSUPPORTED")


class TestOAuthPost:
    """POST /service/token, OAuth2's password grant (distribution docs/spec/auth/oauth.md), tried by containerd."""

    def test_password_grant(self, alice, repositories):
        response = Client().post(
            TOKEN_URL,
            {
                "grant_type": "password",
                "username": "alice",
                "password": PASSWORD,
                "service": settings.SWR_REGISTRY_HOST,
                "client_id": "containerd-client",
                "scope": "repository:group/web:pull,push repository:nogroup/x:pull",
            },
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["scope"] == "repository:group/web:pull,push"
        assert access_of(body["access_token"]) == {"repository:group/web": ["pull", "push"]}

    def test_wrong_password(self, alice):
        response = Client().post(TOKEN_URL, {"grant_type": "password", "username": "alice", "password": "no"})
        oci_error(response, 401, "UNAUTHORIZED")

    def test_refresh_token_grant_is_not_offered(self, alice):
        """containerd falls back to GET on a 400."""
        response = Client().post(TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": "x"})
        oci_error(response, 400, "UNSUPPORTED")

    def test_other_methods(self, db):
        response = Client().put(TOKEN_URL)
        oci_error(response, 405, "UNSUPPORTED")
        assert response["Allow"] == "GET, POST"


class TestBearerOnRegistryRoutes:
    def test_challenge_format(self, db):
        """Spec section 9: WWW-Authenticate: Bearer realm="<base URL>/service/token",service="<host>",scope=..."""
        response = probe("pull,push", "group/web")
        oci_error(response, 401, "UNAUTHORIZED")
        assert response["WWW-Authenticate"] == (
            f'Bearer realm="http://testserver/service/token",service="{settings.SWR_REGISTRY_HOST}",'
            'scope="repository:group/web:pull,push"'
        )

    def test_realm_is_the_base_url_the_client_used(self, db):
        response = Client().get("/probe/repository/pull/group/web", HTTP_HOST="localhost:5000")
        assert challenge_params(response)["realm"] == "http://localhost:5000/service/token"

    def test_the_token_flow(self, alice, repositories):
        """What a client does: ask, follow the challenge to the token endpoint, ask again with the token."""
        first = probe("pull,push", "group/web")
        params = challenge_params(first)
        token = token_for(basic("alice", PASSWORD), params["scope"])
        response = probe("pull,push", "group/web", bearer(token), who=1)
        assert response.status_code == 200
        assert response.json() == {"user": "alice"}

    def test_the_credential_is_not_read_from_the_database(self, alice, repositories, django_assert_num_queries):
        token = token_for(basic("alice", PASSWORD), "repository:group/web:pull")
        with django_assert_num_queries(0):
            assert probe("pull", "group/web", bearer(token)).status_code == 200

    def test_the_access_log_names_the_tokens_user_without_reading_it(self, alice, repositories, caplog):
        """The token carries the user's and the tenant's names (claims ``username`` and ``tenant``), so that the
        access line of a pull, which never reads the user, says whose it is; a token without them (issued before
        they were added) still works and logs no user; an anonymous token has neither."""
        token = token_for(basic("alice", PASSWORD), "repository:group/web:pull")
        assert {k: decode(token)[k] for k in ("sub", "username", "tenant")} == {
            "sub": str(alice.pk),
            "username": "alice",
            "tenant": "acme",
        }
        unnamed = signed(
            {"sub": str(alice.pk), "access": [{"type": "repository", "name": "group/web", "actions": ["pull"]}]}
        )

        def logged(token: str) -> dict:
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="swr.access"), CaptureQueriesContext(connection) as queries:
                response = Client().get("/v2/group/web/tags/list", **bearer(token))
            assert response.status_code == 200, response.content[:300]
            assert not [q["sql"] for q in queries if User._meta.db_table in q["sql"]]  # the user is not read
            [line] = [record for record in caplog.records if record.name == "swr.access"]
            return {"user": line.user, "tenant": line.tenant, "message": line.getMessage()}

        assert logged(token) == {
            "user": "alice",
            "tenant": "acme",
            "message": "GET /v2/group/web/tags/list 200 user=alice tenant=acme",  # all a plain log line shows
        }
        assert logged(unnamed) == {"user": None, "tenant": None, "message": "GET /v2/group/web/tags/list 200"}

    def test_an_anonymous_token_names_nobody(self, repositories, settings):
        settings.SWR_ANONYMOUS_PULL = True
        claims = decode(token_for({}, "repository:group/pub:pull"))
        assert claims["sub"] == ""
        assert "username" not in claims
        assert "tenant" not in claims

    def test_expired_token(self, alice):
        token = signed({"sub": str(alice.pk), "exp": int(time.time()) - 120, "iat": int(time.time()) - 420})
        response = probe("pull", "group/web", bearer(token))
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["error"] == "invalid_token"

    def test_a_token_accepted_before_is_refused_once_it_expires(self, alice, monkeypatch):
        """A verified token is remembered by the process (tokens.verify); its expiry is still checked on every
        request, with the same leeway as the first check."""
        from swr.api.registry import tokens

        access = [{"type": "repository", "name": "group/web", "actions": ["pull"]}]
        now = int(time.time())
        token = signed({"sub": str(alice.pk), "access": access, "exp": now + 60})
        assert probe("pull", "group/web", bearer(token)).status_code == 200
        monkeypatch.setattr(tokens.time, "time", lambda: now + 60 + tokens.LEEWAY_SECONDS - 1)
        assert probe("pull", "group/web", bearer(token)).status_code == 200
        monkeypatch.setattr(tokens.time, "time", lambda: now + 60 + tokens.LEEWAY_SECONDS)
        response = probe("pull", "group/web", bearer(token))
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["error"] == "invalid_token"

    def test_token_signed_by_another_key(self, alice):
        other = ec.generate_private_key(ec.SECP256R1())
        token = signed(
            {"sub": str(alice.pk), "access": [{"type": "repository", "name": "group/web", "actions": ["pull"]}]},
            key=other,
        )
        response = probe("pull", "group/web", bearer(token))
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["error"] == "invalid_token"

    def test_token_for_another_service(self, alice):
        access = [{"type": "repository", "name": "group/web", "actions": ["pull"]}]
        token = signed({"sub": str(alice.pk), "aud": "registry.elsewhere.example", "access": access})
        oci_error(probe("pull", "group/web", bearer(token)), 401, "UNAUTHORIZED")
        assert probe("pull", "group/web", bearer(signed({"sub": str(alice.pk), "access": access}))).status_code == 200

    def test_token_of_another_algorithm_or_altered(self, alice):
        access = [{"type": "repository", "name": "group/web", "actions": ["pull", "push"]}]
        unsigned = jwt.encode({"sub": str(alice.pk), "access": access}, None, algorithm="none")
        oci_error(probe("pull", "group/web", bearer(unsigned)), 401, "UNAUTHORIZED")
        header, payload, signature = signed({"sub": str(alice.pk)}).split(".")
        forged = base64.urlsafe_b64encode(json.dumps({"sub": str(alice.pk), "access": access}).encode())
        oci_error(
            probe("pull", "group/web", bearer(f"{header}.{forged.decode().rstrip('=')}.{signature}")),
            401,
            "UNAUTHORIZED",
        )

    def test_token_without_the_scope_asks_for_it(self, alice, repositories):
        """A token that was not asked for this repository: 401 with a challenge for it, so that the client gets
        one (clients reuse tokens, and a mount needs the source repository too)."""
        token = token_for(basic("alice", PASSWORD), "repository:group/pub:pull")
        response = probe("pull,push", "group/web", bearer(token))
        oci_error(response, 401, "UNAUTHORIZED")
        params = challenge_params(response)
        assert params["scope"] == "repository:group/web:pull,push"
        assert params["error"] == "insufficient_scope"

    def test_token_refused_what_the_route_needs(self, reader, repositories):
        """The token was asked for push and refused it: 403 DENIED, no new challenge."""
        token = token_for(basic("rita", PASSWORD), "repository:group/web:pull,push")
        oci_error(probe("pull,push", "group/web", bearer(token)), 403, "DENIED")
        assert probe("pull", "group/web", bearer(token)).status_code == 200

    def test_a_denial_says_what_each_action_needs(self, reader, repositories):
        """403 DENIED names the refused actions and the permissions they need; a refused push adds that a push
        never creates the organization (a push to a missing one is refused the same way)."""
        token = token_for(basic("rita", PASSWORD), "repository:group/web:pull,push,delete")
        message = oci_error(probe("push", "group/web", bearer(token)), 403, "DENIED")["errors"][0]["message"]
        assert message == (
            "Requested access to the resource is denied: push on group/web. Push needs edit on the organization (or "
            "manage on an existing repository). A push creates a repository, never its organization: organizations "
            "are created with POST /v2/manage/namespaces."
        )
        message = oci_error(probe("delete", "group/web", bearer(token)), 403, "DENIED")["errors"][0]["message"]
        assert message.endswith("delete on group/web. Delete needs manage on the organization or the repository.")

    def test_a_push_to_a_missing_organization_reads_as_one_to_a_forbidden_one(self, make_user, other_tenant, namespace):
        outsider = make_user("olga", other_tenant)
        outsider.set_password(PASSWORD)
        outsider.save()
        answers = []
        for name in ("group/web", "nowhere/web"):  # another tenant's organization; none at all
            token = token_for(basic("olga", PASSWORD), f"repository:{name}:pull,push")
            body = oci_error(probe("pull,push", name, bearer(token)), 403, "DENIED")
            answers.append(json.dumps(body).replace(name, "NAME").replace(name.split("/")[0], "ORG"))
        assert answers[0] == answers[1]
        assert "organizations are created with POST /v2/manage/namespaces" in answers[0]

    def test_private_and_missing_repositories_read_the_same(self, make_user, other_tenant, repositories):
        outsider = make_user("olga", other_tenant)
        outsider.set_password(PASSWORD)
        outsider.save()
        answers = []
        for name in ("group/web", "group/missing"):
            token = token_for(basic("olga", PASSWORD), f"repository:{name}:pull")
            response = probe("pull", name, bearer(token))
            body = oci_error(response, 403, "DENIED")
            answers.append(json.dumps(body).replace(name, "NAME"))
        assert answers[0] == answers[1]

    def test_mount_source_not_in_the_token_is_asked_for(self, alice, repositories):
        token = token_for(basic("alice", PASSWORD), "repository:group/web:pull,push")
        response = probe("pull,push", "group/web", bearer(token), **{"from": "group/pub"})
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["scope"] == "repository:group/web:pull,push repository:group/pub:pull"

    def test_mount_source_refused_falls_back(self, make_user, tenant, namespace, make_tenant):
        """A mount from a repository the caller may not pull is no refusal of the push: may() says no."""
        services.repository_create(namespace=namespace, name="web", is_public=False, actor=OPERATOR)
        theirs = services.namespace_create(name="theirs", tenant=make_tenant("globex"), actor=OPERATOR)
        services.repository_create(namespace=theirs, name="secret", is_public=False, actor=OPERATOR)
        editor = make_user("ed", tenant)
        editor.set_password(PASSWORD)
        editor.save()
        NamespacePermission.objects.create(user=editor, namespace=namespace, level=PermissionLevel.EDIT)
        token = token_for(basic("ed", PASSWORD), "repository:group/web:pull,push repository:theirs/secret:pull")
        response = probe("pull,push", "group/web", bearer(token), **{"from": "theirs/secret", "may": "theirs/secret"})
        assert response.status_code == 200
        assert response.json() == {"may": []}

    def test_user_deactivated_after_the_token(self, alice, repositories):
        token = token_for(basic("alice", PASSWORD), "repository:group/web:pull,push")
        alice.is_active = False
        alice.save()
        # The signature alone lets a pull through until the token expires (SWR_REGISTRY_TOKEN_LIFETIME) ...
        assert probe("pull", "group/web", bearer(token)).status_code == 200
        # ... but a change, which records its user, finds the user gone.
        oci_error(probe("pull,push", "group/web", bearer(token), who=1), 401, "UNAUTHORIZED")

    def test_invalid_name(self, alice):
        token = token_for(basic("alice", PASSWORD), "repository:group/web:pull")
        oci_error(probe("pull", "Group/Web", bearer(token)), 400, "NAME_INVALID")
        oci_error(probe("pull", "manage/web", basic("alice", PASSWORD)), 400, "NAME_INVALID")
        response = probe("pull", "Group/Web")
        oci_error(response, 401, "UNAUTHORIZED")
        assert "scope" not in challenge_params(response)

    def test_unknown_scheme(self, db):
        oci_error(probe("pull", "group/web", {"HTTP_AUTHORIZATION": "Token abc"}), 401, "UNAUTHORIZED")


class TestBasicOnRegistryRoutes:
    def test_password(self, alice, repositories):
        response = probe("pull,push,delete", "group/web", basic("alice", PASSWORD), who=1)
        assert (response.status_code, response.json()) == (200, {"user": "alice"})

    def test_long_term_login(self, access_key, repositories):
        key, secret = access_key
        headers = basic(f"cn-north-4@{key.access_key}", long_term_password(key.access_key, secret))
        assert probe("pull,push", "group/web", headers).status_code == 200

    def test_api_token(self, alice, repositories):
        _, raw = services.token_issue(user=alice, actor=OPERATOR)
        assert probe("pull,push", "group/web", basic("alice", raw)).status_code == 200

    def test_permissions_from_the_policy(self, reader, repositories):
        assert probe("pull", "group/web", basic("rita", PASSWORD)).status_code == 200
        oci_error(probe("pull,push", "group/web", basic("rita", PASSWORD)), 403, "DENIED")

    def test_wrong_password_gets_the_challenge(self, alice):
        response = probe("pull", "group/web", basic("alice", "wrong"))
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["scope"] == "repository:group/web:pull"


class TestAnonymous:
    def test_off_by_default(self, repositories):
        response = probe("pull", "group/pub")
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["scope"] == "repository:group/pub:pull"

    def test_public_pull_when_on(self, repositories, settings):
        settings.SWR_ANONYMOUS_PULL = True
        response = probe("pull", "group/pub", who=1)
        assert (response.status_code, response.json()) == (200, {"user": None})
        oci_error(probe("pull,push", "group/pub"), 401, "UNAUTHORIZED")

    def test_private_and_missing_read_the_same_when_on(self, repositories, settings):
        settings.SWR_ANONYMOUS_PULL = True
        private, missing = probe("pull", "group/web"), probe("pull", "group/missing")
        oci_error(private, 401, "UNAUTHORIZED")
        oci_error(missing, 401, "UNAUTHORIZED")
        assert private.content == missing.content

    def test_what_an_anonymous_token_does_not_allow_reads_as_no_credentials(self, repositories, settings):
        """An anonymous token is no credential: a request it does not cover answers 401 with the challenge, exactly
        as the same request without a token (it answered 403 DENIED, telling a client that logging in would not
        help), and the same for a private repository and a missing one."""
        settings.SWR_ANONYMOUS_PULL = True
        asked = [("pull,push", "group/pub"), ("pull", "group/web"), ("pull", "group/missing")]
        token = token_for({}, *(f"repository:{name}:{actions}" for actions, name in asked))
        answers = []
        for actions, name in asked:
            response = probe(actions, name, bearer(token))
            oci_error(response, 401, "UNAUTHORIZED")
            assert challenge_params(response)["scope"] == f"repository:{name}:{actions}"
            assert response.content == probe(actions, name).content
            answers.append(response["WWW-Authenticate"].replace(name, "NAME"))
        assert answers[1] == answers[2]

    def test_anonymous_token_stops_working_when_turned_off(self, repositories, settings):
        settings.SWR_ANONYMOUS_PULL = True
        token = token_for({}, "repository:group/pub:pull")
        assert probe("pull", "group/pub", bearer(token)).status_code == 200
        settings.SWR_ANONYMOUS_PULL = False
        oci_error(probe("pull", "group/pub", bearer(token)), 401, "UNAUTHORIZED")


class TestCatalogAndCheck:
    def test_catalog_challenge(self, db):
        response = Client().get("/probe/catalog")
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["scope"] == "registry:catalog:*"

    def test_catalog_with_a_token(self, reader):
        token = token_for(basic("rita", PASSWORD), "registry:catalog:*")
        assert Client().get("/probe/catalog", **bearer(token)).status_code == 200
        other = token_for(basic("rita", PASSWORD), "repository:group/web:pull")
        response = Client().get("/probe/catalog", **bearer(other))
        oci_error(response, 401, "UNAUTHORIZED")
        assert challenge_params(response)["error"] == "insufficient_scope"

    def test_catalog_with_basic(self, reader):
        assert Client().get("/probe/catalog", **basic("rita", PASSWORD)).status_code == 200

    def test_version_check(self, alice):
        response = Client().get("/probe/check")
        oci_error(response, 401, "UNAUTHORIZED")
        assert "scope" not in challenge_params(response)
        assert Client().get("/probe/check", **bearer(token_for(basic("alice", PASSWORD)))).status_code == 200
        assert Client().get("/probe/check", **basic("alice", PASSWORD)).status_code == 200


class TestPasswordThrottle:
    """Spec section 1: password logins, the token endpoint's too, are throttled per user name."""

    def test_token_endpoint_locks_after_five_failures(self, alice):
        statuses = [get_token(basic("alice", "wrong")).status_code for _ in range(5)]
        assert statuses == [401] * 4 + [429]
        response = get_token(basic("alice", PASSWORD))
        body = oci_error(response, 429, "TOOMANYREQUESTS")
        assert 15 * 60 - 5 <= int(response["Retry-After"]) <= 15 * 60
        assert "Too many failed logins" in body["errors"][0]["message"]

    def test_registry_routes_answer_429_too(self, alice, repositories):
        for _ in range(5):
            probe("pull", "group/web", basic("alice", "wrong"))
        response = probe("pull", "group/web", basic("alice", PASSWORD))
        oci_error(response, 429, "TOOMANYREQUESTS")
        assert int(response["Retry-After"]) > 0

    def test_counted_with_the_management_api_login(self, alice):
        for _ in range(5):
            Client().post(
                "/v3/auth/tokens",
                data=json.dumps(
                    {
                        "auth": {
                            "identity": {
                                "methods": ["password"],
                                "password": {"user": {"name": "alice", "password": "x", "domain": {"name": "acme"}}},
                            }
                        }
                    }
                ),
                content_type="application/json",
            )
        oci_error(get_token(basic("alice", PASSWORD)), 429, "TOOMANYREQUESTS")

    def test_other_kinds_of_credentials_are_not_locked(self, alice, access_key, repositories):
        """The lockout throttles guessing a password; an API token or an AK/SK login holds a 256-bit secret."""
        for _ in range(5):
            get_token(basic("alice", "wrong"))
        _, raw = services.token_issue(user=alice, actor=OPERATOR)
        assert get_token(basic("alice", raw)).status_code == 200
        key, secret = access_key
        assert get_token(basic(f"x@{key.access_key}", long_term_password(key.access_key, secret))).status_code == 200

    def test_token_requests_leave_no_audit_record(self, alice):
        from swr.models import AuditRecord

        before = AuditRecord.objects.count()
        get_token(basic("alice", PASSWORD), "repository:group/web:pull")
        get_token(basic("alice", "wrong"))
        assert AuditRecord.objects.count() == before


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
class TestOverHttp:
    """The token endpoint as gunicorn serves it in production, the lockout shared by its workers."""

    @pytest.fixture(autouse=True)
    def production_hasher(self, settings):
        """The server checks passwords with the production hashers: store them so."""
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

    def call(self, server, path, headers=None, data=None):
        request = urllib.request.Request(f"{server}{path}", data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.headers, json.loads(error.read())

    def test_token_over_http(self, server, alice, repositories):
        headers = {"Authorization": basic("alice", PASSWORD)["HTTP_AUTHORIZATION"]}
        status, _, body = self.call(
            server, f"{TOKEN_URL}?service=x&scope=repository%3Agroup%2Fweb%3Apull%2Cpush", headers
        )
        assert status == 200, body
        # The server runs without SWR_REGISTRY_HOST: the service is the host the request was sent to.
        host = urllib.parse.urlsplit(server).netloc
        assert access_of(body["token"], host) == {"repository:group/web": ["pull", "push"]}
        status, response_headers, body = self.call(
            server, TOKEN_URL, {"Authorization": basic("alice", "no")["HTTP_AUTHORIZATION"]}
        )
        assert status == 401
        assert body["errors"][0]["code"] == "UNAUTHORIZED"
        assert response_headers["WWW-Authenticate"].startswith("Basic ")
        form = urllib.parse.urlencode({"grant_type": "password", "username": "alice", "password": PASSWORD}).encode()
        status, _, body = self.call(server, TOKEN_URL, data=form)
        assert status == 200, body

    def test_lockout_over_http(self, server, alice):
        wrong = {"Authorization": basic("alice", "wrong")["HTTP_AUTHORIZATION"]}
        statuses = [self.call(server, TOKEN_URL, wrong)[0] for _ in range(5)]
        assert statuses == [401] * 4 + [429]
        status, headers, body = self.call(
            server, TOKEN_URL, {"Authorization": basic("alice", PASSWORD)["HTTP_AUTHORIZATION"]}
        )
        assert status == 429
        assert body["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert int(headers["Retry-After"]) > 0
