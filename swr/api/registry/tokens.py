"""The registry's bearer tokens (spec section 9): signed JWTs, and the scopes they are asked for and hold.

A token is issued by ``GET /service/token`` (token_views.py) and verified on each registry request by its
signature alone: no database read for the credential. It is an ES256 JWT (RS256 for an RSA key), signed with
the key of SWR_REGISTRY_TOKEN_KEY (registry/settings.py: a PEM, derived from SECRET_KEY when unset), whose
claims are those of CNCF distribution's token specification (docs/spec/auth/jwt.md):

- ``iss`` (:data:`ISSUER`), ``sub`` (the user's id; empty for an anonymous caller), ``aud`` (the service,
  SWR_REGISTRY_HOST), ``exp``, ``nbf``, ``iat``, ``jti``;
- ``username`` and ``tenant``: the user's name and their tenant's name when it was issued (neither for an
  anonymous caller; no ``tenant`` for a user without one), for the access log of requests that do not read
  the user (swr/logs.py);
- ``access``: ``[{"type", "name", "actions"}]``, only the actions the user may do when it is issued;
- ``denied``: the same form, the actions it was asked for and refused. A registry route that finds its
  actions there answers 403 DENIED; actions the token was never asked for answer 401 with a challenge for
  them instead, so that the client gets a token that covers them (auth.py).

Scopes (docs/spec/auth/scope.md): ``repository:<name>:<actions>``, actions comma-separated from pull, push,
delete (``*``: all three), and ``registry:catalog:*`` for ``GET /v2/_catalog``.
"""

import functools
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from swr.distribution.errors import OciError, Unauthorized
from swr.policy import REGISTRY_ACTIONS

ISSUER = "swr-registry-token-service"
# Allowed difference between the clocks of the node that issued a token and the one that checks it.
LEEWAY_SECONDS = 30
REPOSITORY, REGISTRY = "repository", "registry"
CATALOG = "catalog"
CATALOG_ACTION = "*"
CATALOG_SCOPE = f"{REGISTRY}:{CATALOG}:{CATALOG_ACTION}"
# Most resources one token request may name: each is one or two queries.
MAX_RESOURCES = 16
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]


@dataclass(frozen=True)
class _Key:
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    algorithm: str


@functools.lru_cache(maxsize=4)
def _key(pem: str) -> _Key:
    try:
        private = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"SWR_REGISTRY_TOKEN_KEY is not an unencrypted PEM private key: {error}") from None
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        return _Key(private, private.public_key(), "ES256")
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048:
        return _Key(private, private.public_key(), "RS256")
    raise ImproperlyConfigured("SWR_REGISTRY_TOKEN_KEY must be an EC P-256 key (ES256) or an RSA key of 2048+ bits")


def signing_key() -> _Key:
    """The key of SWR_REGISTRY_TOKEN_KEY, loaded once per value."""
    return _key(settings.SWR_REGISTRY_TOKEN_KEY)


def ordered(actions) -> list[str]:
    """Registry actions in the order scopes write them (pull, push, delete), then any others sorted."""
    known = [action for action in REGISTRY_ACTIONS if action in actions]
    return known + sorted(set(actions) - set(REGISTRY_ACTIONS))


def scope(name: str, actions) -> str:
    """``repository:<name>:<actions comma-joined>``."""
    return f"{REPOSITORY}:{name}:{','.join(ordered(actions))}"


@dataclass(frozen=True)
class Resource:
    """A resource scopes and tokens speak of: a repository by its registry name, or the catalog."""

    type: str
    name: str


CATALOG_RESOURCE = Resource(REGISTRY, CATALOG)


def parse_scopes(values: list[str]) -> dict[Resource, set[str]]:
    """The actions asked for each resource by ``scope`` parameters, each a space-separated list of
    ``<type>:<name>:<actions>`` (``type`` may carry a class, ``repository(plugin)``; a name may hold ':', the
    actions are after the last one). Several scopes of one resource add up. A malformed scope is a 400."""
    asked: dict[Resource, set[str]] = {}
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            kind = kind.split("(", 1)[0]
            if not kind or not name or not actions:
                raise OciError(
                    f"Invalid scope {item[:200]!r}: expected repository:<name>:<actions> or {CATALOG_SCOPE}.",
                    status_code=400,
                )
            asked.setdefault(Resource(kind, name), set()).update(a for a in actions.split(",") if a)
    if len(asked) > MAX_RESOURCES:
        raise OciError(f"Too many scopes: at most {MAX_RESOURCES} resources in one token request.", status_code=400)
    return asked


def _claim_entries(access: dict[Resource, set[str]]) -> list[dict]:
    return [
        {"type": resource.type, "name": resource.name, "actions": ordered(actions)}
        for resource, actions in access.items()
    ]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime


def issue(
    subject: str,
    access: dict[Resource, set[str]],
    denied: dict[Resource, set[str]],
    service: str,
    *,
    username: str = "",
    tenant: str = "",
) -> IssuedToken:
    """A signed token for ``subject`` (a user id, or "" for anonymous) holding ``access``, and the asked
    actions it refuses (``denied``), for ``service`` (its audience: the registry's host), valid
    SWR_REGISTRY_TOKEN_LIFETIME from now. ``username`` and ``tenant`` name the user for the access log."""
    key = signing_key()
    now = int(time.time())
    lifetime = int(settings.SWR_REGISTRY_TOKEN_LIFETIME.total_seconds())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": service,
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": _claim_entries(access),
    }
    claims.update({name: value for name, value in (("username", username), ("tenant", tenant)) if value})
    refused = {resource: actions for resource, actions in denied.items() if actions}
    if refused:
        claims["denied"] = _claim_entries(refused)
    token = jwt.encode(claims, key.private, algorithm=key.algorithm)
    return IssuedToken(token, lifetime, datetime.fromtimestamp(now, tz=UTC))


@dataclass(frozen=True)
class Claims:
    """What a verified token says: whose it is (``subject``: a user id, "" for anonymous; ``username`` and
    ``tenant``: their names when it was issued, "" when it does not say), what it allows (``access``) and what
    it was refused (``denied``)."""

    subject: str
    access: dict[Resource, frozenset[str]]
    denied: dict[Resource, frozenset[str]]
    username: str = ""
    tenant: str = ""


def _entries(value) -> dict[Resource, frozenset[str]]:
    if not isinstance(value, list):
        raise TypeError("access entries must be a list")
    entries: dict[Resource, frozenset[str]] = {}
    for entry in value:
        resource = Resource(str(entry["type"]), str(entry["name"]))
        actions = entry["actions"]
        if not isinstance(actions, list):
            raise TypeError("actions must be a list")
        entries[resource] = entries.get(resource, frozenset()) | frozenset(str(a) for a in actions)
    return entries


def verify(raw: str, service: str) -> Claims:
    """The claims of a token this service signed, for ``service`` (the registry's host), now valid;
    Unauthorized (401, RFC 6750's ``invalid_token``) for any other: a bad signature or another key's,
    another audience or issuer, expired, not yet valid, malformed.

    A client sends one token with every request of a push or pull, so a token verified once is remembered
    (the last VERIFIED_TOKENS of this process, with the key that signed them); only its expiry is checked
    again. A token that fails is not remembered."""
    claims, expires = _verified(raw, service, settings.SWR_REGISTRY_TOKEN_KEY)
    if time.time() >= expires + LEEWAY_SECONDS:  # as PyJWT checks ``exp``
        raise Unauthorized("The bearer token has expired: get a new one.", reason="invalid_token")
    return claims


# Verified tokens remembered per process (a few hundred bytes each).
VERIFIED_TOKENS = 1024


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(raw: str, service: str, pem: str) -> tuple[Claims, int]:
    """The claims of token ``raw`` and its expiry (``exp``, seconds since the epoch), checked with the key of
    ``pem``; Unauthorized otherwise (see :func:`verify`)."""
    key = _key(pem)
    try:
        claims = jwt.decode(
            raw,
            key.public,
            algorithms=[key.algorithm],
            audience=service,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED_CLAIMS},
        )
        access, denied = _entries(claims.get("access", [])), _entries(claims.get("denied", []))
        names = {name: str(claims.get(name, "")) for name in ("username", "tenant")}
        return Claims(claims["sub"], access, denied, **names), int(claims["exp"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The bearer token has expired: get a new one.", reason="invalid_token") from None
    except (jwt.InvalidTokenError, KeyError, TypeError) as error:
        raise Unauthorized(f"The bearer token is not valid here: {error}.", reason="invalid_token") from None
