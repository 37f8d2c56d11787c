"""Who calls the registry, and what they may do there (spec section 9, Authentication and Permissions).

The views of swr/api/registry/ call :func:`authorize` (a repository and the actions a route needs),
:func:`authorize_catalog` (``GET /v2/_catalog``) or :func:`authenticate` (``GET /v2/``) first, and get a
:class:`Caller`. A request proves who it is in one of two ways:

- ``Authorization: Bearer <token>``, a token of ``GET /service/token`` (tokens.py), checked by its
  signature alone: its ``access`` claim is what it allows, no database read for the credential;
- ``Authorization: Basic``, with any of the credentials the token endpoint takes (:func:`login`), the
  permissions read from swr/policy.py on each request.

Without credentials a request answers 401 with the Bearer challenge, except anonymous pulls of public
repositories when SWR_ANONYMOUS_PULL is on. Answers (swr/distribution/errors.py, rendered by errors.py):
401 UNAUTHORIZED with the challenge (no or bad credentials, or a token that was not asked for what the
request needs: the client gets a new one for the challenge's scope; an anonymous caller, with or without an
anonymous token, whom anonymous pull does not let do it); 403 DENIED (valid credentials that may not do it:
the same for an existing private repository and a missing one); 400 NAME_INVALID (a name that breaks
section 2's rules, told only to a caller with valid credentials); 429 TOOMANYREQUESTS (a password login of a
locked user name).
"""

import base64
import binascii
import hmac
import logging

from django.conf import settings
from django.contrib.auth import authenticate as password_authenticate

from swr import logs, names, policy, selectors, signing
from swr.api import hosts
from swr.api.auth_views import login_throttled
from swr.api.registry import tokens
from swr.api.registry.tokens import CATALOG_ACTION, CATALOG_RESOURCE, REPOSITORY, Resource
from swr.audit import Actor, Source
from swr.choices import TemporaryLoginKind
from swr.distribution.errors import Denied, NameInvalid, TooManyRequests, Unauthorized
from swr.models import AccessKey, ApiToken, TemporaryLogin, User

logger = logging.getLogger("swr.api")

# One answer for every refused login: it tells nothing about which part was wrong, nor whether a user name
# or an access key exists or is disabled (spec section 1).
LOGIN_FAILED = (
    "Authentication failed: the user name and password are not a valid login (your user name with your password "
    "or an API token, or <region or project>@<AK> with the hex HMAC-SHA256 of the AK under its SK), or the "
    "credential is disabled, revoked or expired."
)
# Longest user name looked at: a user's name (150), or <region or project>@<AK>.
MAX_USERNAME_LENGTH = 255
_CALLER_ATTRIBUTE = "_swr_registry_caller"


# Credentials (spec section 9): the same four kinds at /service/token and on the registry routes.


def basic_credentials(request) -> tuple[str, str] | None:
    """User name and password of ``Authorization: Basic`` (UTF-8, RFC 7617); None without such a header.
    A malformed one is a 401."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized("Malformed Basic credentials: base64 of <user name>:<password> expected.") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise Unauthorized("Malformed Basic credentials: base64 of <user name>:<password> expected.")
    return username, password


def login(request, username: str, password: str) -> User:
    """The user that ``username`` and ``password`` log in, by the first kind of credential that applies:

    1. SWR's long-term login: user name ``<region or project name>@<AK>``, password the lowercase hex of
       HMAC-SHA256(key = SK, message = AK), valid while the access key and its user are active;
    2. a temporary login of spec section 11 (:func:`_temporary_login`): ``<project>@<id>`` or
       ``bearertoken@<id>`` with its secret, until it expires or is revoked;
    3. an API token (``swr_...``) as the password, with its user's name as the user name;
    4. the user's own name and password, throttled per user name by django-axes (spec section 1): a locked
       name answers 429 TOOMANYREQUESTS with Retry-After, whether the password is right or not.
    Anything else is a 401 (:data:`LOGIN_FAILED`).
    """
    if not username or len(username) > MAX_USERNAME_LENGTH or "\x00" in username:
        raise Unauthorized(LOGIN_FAILED)  # no user has such a name, nor could it be looked up or counted
    prefix, at, suffix = username.rpartition("@")
    if at and prefix and suffix:
        user = _temporary_login(prefix, suffix, password)
        if user is not None:
            return user
        key = selectors.access_key(suffix)
        if key is not None:
            return _long_term_login(key, password)
    if password.startswith(ApiToken.PREFIX):
        token = selectors.api_token(ApiToken.hash_key(password))
        if token is not None:
            if token.user.username != username or not token.user.is_active or not token.is_active:
                raise Unauthorized(LOGIN_FAILED)
            return token.user
    return _password_login(request, username, password)


def _long_term_login(key: AccessKey, password: str) -> User:
    if not key.is_active or not key.user.is_active:
        raise Unauthorized(LOGIN_FAILED)
    secret_key = signing.decrypt_secret(key.secret_encrypted)
    if secret_key is None:
        logger.warning(
            "Access key %s cannot be decrypted: it was stored under another SWR_CREDENTIALS_KEY", key.access_key
        )
        raise Unauthorized(LOGIN_FAILED)
    expected = signing.signature(secret_key, key.access_key)
    if not hmac.compare_digest(expected.encode(), password.encode()):
        raise Unauthorized(LOGIN_FAILED)
    return key.user


def _temporary_login(prefix: str, identifier: str, secret: str) -> User | None:
    """The user of a temporary login of spec section 11 (``<project>@<id>`` or ``bearertoken@<id>``, with the
    secret that ``POST /v2/manage/utils/secret`` or ``.../authorizationtoken`` answered); None when ``identifier``
    names none (the user name may be a long-term login). A known identifier with a wrong secret or prefix, an
    expired or revoked login (deleted) or a deactivated user is a 401."""
    login = selectors.temporary_login(identifier)
    if login is None:
        return None
    expected = TemporaryLogin.hash_secret(secret)
    bearer = login.kind == TemporaryLoginKind.BEARER_TOKEN
    if (
        not hmac.compare_digest(expected.encode(), login.secret_hash.encode())
        or bearer != (prefix == TemporaryLoginKind.BEARER_TOKEN)
        or not login.is_active
        or not login.user.is_active
    ):
        raise Unauthorized(LOGIN_FAILED)
    return login.user


def _password_login(request, username: str, password: str) -> User:
    user = password_authenticate(request, username=username, password=password)
    if user is not None:
        return user
    if getattr(request, "axes_locked_out", False):
        throttled = login_throttled(username)
        raise TooManyRequests(throttled.message, retry_after=throttled.wait)
    raise Unauthorized(LOGIN_FAILED)


# Who calls, and what they may do.


def split_name(name: str) -> tuple[str, str] | None:
    """``<namespace>/<repository>`` split at its first '/' when both parts keep their naming rules (spec
    section 2; the organization ``manage`` is reserved); None otherwise."""
    namespace, _, repository = name.partition("/")
    if names.NAMESPACE.is_valid(namespace) and names.REPOSITORY.is_valid(repository):
        return namespace, repository
    return None


class Caller:
    """Who calls a registry route, and what they may do.

    ``user``: the swr.models.User, or None for an anonymous caller. A bearer token carries only the user's
    id: the user is read on first use (a push's audit record needs it; a pull does not). ``actor``: the
    swr.audit.Actor of the changes it makes (source "api", the request's id). :meth:`may` answers from the
    token's claims, or else from swr/policy.py.
    """

    def __init__(self, request, *, user: User | None = None, claims: tokens.Claims | None = None):
        self._request = request
        self._user = user
        self.claims = claims
        self._actions: dict[str, set[str]] = {}

    @property
    def is_anonymous(self) -> bool:
        return self._user is None and (self.claims is None or self.claims.subject == "")

    @property
    def user(self) -> User | None:
        if self._user is None and not self.is_anonymous:
            user = selectors.user(int(self.claims.subject)) if self.claims.subject.isdigit() else None
            if user is None or not user.is_active:
                raise Unauthorized("The token's user no longer exists or is deactivated.", reason="invalid_token")
            self._user = self._request.user = user
        return self._user

    @property
    def actor(self) -> Actor:
        return Actor(user=self.user, source=Source.API, request_id=getattr(self._request, "request_id", ""))

    def actions(self, name: str) -> set[str]:
        """What the caller may do on repository ``name`` (``<namespace>/<repository>``): a subset of pull,
        push, delete."""
        if self.claims is not None:
            return set(self.claims.access.get(Resource(REPOSITORY, name), ()))
        if name not in self._actions:
            parts = split_name(name)
            self._actions[name] = policy.registry_actions(self._user, *parts) if parts else set()
        return self._actions[name]

    def may(self, name: str, action: str) -> bool:
        """May the caller do ``action`` ("pull", "push", "delete") on repository ``name``?"""
        return action in self.actions(name)

    def was_asked(self, name: str, action: str) -> bool:
        """Whether the caller's token was asked for ``action`` on repository ``name`` (granted or refused);
        True for Basic credentials, which are judged by the policy each time."""
        return self.claims is None or self._answered(Resource(REPOSITORY, name), {action})

    def _answered(self, resource: Resource, actions) -> bool:
        """Whether the token was asked for all of ``actions`` on ``resource`` (each granted or refused)."""
        claims = self.claims
        return set(actions) <= claims.access.get(resource, frozenset()) | claims.denied.get(resource, frozenset())


def authenticate(request, *, required: bool = False) -> Caller | None:
    """The caller of a registry route by its credentials; None without any (Unauthorized with the challenge
    when ``required``, as for ``GET /v2/``). Bad credentials are a 401, a locked password login a 429.
    Computed once per request."""
    caller = getattr(request, _CALLER_ATTRIBUTE, None)
    if caller is not None:
        return caller
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not scheme:
        if required:
            raise Unauthorized()
        return None
    if scheme.lower() == "bearer":
        claims = tokens.verify(value.strip(), hosts.registry_host(request))
        if claims.subject == "" and not settings.SWR_ANONYMOUS_PULL:
            raise Unauthorized("Anonymous access is turned off: log in.", reason="invalid_token")
        caller = Caller(request, claims=claims)
        if claims.username:  # the access log names the caller without reading the user
            logs.identify(request, claims.username, claims.tenant)
    elif scheme.lower() == "basic":
        user = login(request, *basic_credentials(request))
        request.user = user
        caller = Caller(request, user=user)
    else:
        raise Unauthorized(f"Unsupported authorization scheme {scheme[:40]!r}: use Bearer (a token) or Basic.")
    setattr(request, _CALLER_ATTRIBUTE, caller)
    return caller


def _authenticate(request, scope: str | None) -> Caller | None:
    """:func:`authenticate`, its 401 challenging for ``scope``: where the client is to get a token, and for what."""
    try:
        return authenticate(request)
    except Unauthorized as error:
        error.scope = error.scope or scope
        raise


def authorize(request, name: str, actions: set[str], *, mount_from: str | None = None) -> Caller:
    """The caller of a route on repository ``name`` (``<namespace>/<repository>``) that needs ``actions``
    (subset of "pull", "push", "delete"), if they may do them all.

    ``mount_from``: the repository of a cross-repository mount (``?from=``). Its pull is not required (a
    blob the caller may not pull there is uploaded as usual); :meth:`Caller.may` tells. But a bearer token
    that was never asked about it is answered 401 with a challenge for both, so that the client gets a
    token that says.

    Raises Unauthorized (401 + ``WWW-Authenticate: Bearer realm=...,service=...,scope="repository:<name>:
    <actions>"``) without valid credentials, or for an anonymous caller (without a token or with an anonymous
    one) whom SWR_ANONYMOUS_PULL does not let do this; NameInvalid (400) for a name that breaks the naming
    rules; Denied (403) when the credentials may not do all of ``actions``, the same for an existing and a
    missing repository.
    """
    parts = split_name(name)
    source = mount_from if mount_from and split_name(mount_from) else None
    wanted = {Resource(REPOSITORY, name): set(actions)}
    if source is not None and source != name:
        wanted[Resource(REPOSITORY, source)] = {policy.PULL}
    challenge = " ".join(tokens.scope(r.name, a) for r, a in wanted.items()) if parts else None
    caller = _authenticate(request, challenge)
    if caller is None:
        anonymous = Caller(request)
        if parts and settings.SWR_ANONYMOUS_PULL and actions <= anonymous.actions(name):
            setattr(request, _CALLER_ATTRIBUTE, anonymous)
            return anonymous
        raise Unauthorized(scope=challenge)
    if parts is None:
        raise NameInvalid(f"Invalid repository name {name[:300]!r}: expected <organization>/<repository>.")
    if caller.claims is not None and not all(caller._answered(r, a) for r, a in wanted.items()):
        raise Unauthorized(
            "The bearer token does not cover this request: get one for the scope of the challenge.",
            scope=challenge,
            reason="insufficient_scope",
        )
    missing = set(actions) - caller.actions(name)
    if missing and caller.is_anonymous:  # an anonymous token is no credential: answered as a request without one
        raise Unauthorized(scope=challenge)
    if missing:
        raise Denied(
            f"Requested access to the resource is denied: {' and '.join(tokens.ordered(missing))} on {name}. "
            + needs(missing)
        )
    return caller


def needs(missing: set[str]) -> str:
    """What a denial of ``missing`` actions on a repository tells the caller to get: the permissions, and that
    a push never creates an organization. The same words whether the repository or the organization exists or
    not (a denial never tells)."""
    needed = policy.REGISTRY_ACTION_NEEDS
    said = "; ".join(needed[action] for action in tokens.ordered(missing) if action in needed)
    hint = f"{said[:1].upper()}{said[1:]}."
    if policy.PUSH in missing:
        hint += (
            " A push creates a repository, never its organization: organizations are created with"
            " POST /v2/manage/namespaces."
        )
    return hint


def authorize_catalog(request) -> Caller:
    """The caller of ``GET /v2/_catalog`` (scope ``registry:catalog:*``): any authenticated caller, an
    anonymous one when SWR_ANONYMOUS_PULL is on. What it lists is policy.pullable_repositories(caller.user)."""
    caller = _authenticate(request, tokens.CATALOG_SCOPE)
    if caller is None:
        if settings.SWR_ANONYMOUS_PULL:
            return Caller(request)
        raise Unauthorized(scope=tokens.CATALOG_SCOPE)
    if caller.claims is not None and CATALOG_ACTION not in caller.claims.access.get(CATALOG_RESOURCE, ()):
        if caller._answered(CATALOG_RESOURCE, {CATALOG_ACTION}):
            raise Denied("Requested access to the resource is denied: the catalog.")
        raise Unauthorized(
            "The bearer token does not cover the catalog: get one for the scope of the challenge.",
            scope=tokens.CATALOG_SCOPE,
            reason="insufficient_scope",
        )
    return caller


def token_grants(
    user: User | None, asked: dict[Resource, set[str]]
) -> tuple[dict[Resource, set[str]], dict[Resource, set[str]]]:
    """What a token for ``user`` (None: anonymous) asked for ``asked`` holds, and what it refuses: for each
    repository the asked actions that policy.registry_actions allows now ("*" asks for all three), for the
    catalog its "*" to every authenticated caller (and anonymous ones with SWR_ANONYMOUS_PULL). Other
    resources and actions are refused."""
    granted: dict[Resource, set[str]] = {}
    refused: dict[Resource, set[str]] = {}
    for resource, actions in asked.items():
        if resource.type == REPOSITORY:
            wanted = set(policy.REGISTRY_ACTIONS) if "*" in actions else actions & set(policy.REGISTRY_ACTIONS)
            parts = split_name(resource.name)
            allowed = policy.registry_actions(user, *parts) if parts else set()
        elif resource == CATALOG_RESOURCE:
            wanted = actions & {CATALOG_ACTION}
            allowed = {CATALOG_ACTION} if user is not None or settings.SWR_ANONYMOUS_PULL else set()
        else:
            wanted, allowed = set(actions), set()
        granted[resource] = wanted & allowed
        refused[resource] = wanted - allowed
    return granted, refused
