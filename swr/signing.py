"""AK/SK request signatures as the Huawei Cloud SDKs make them (``SDK-HMAC-SHA256``).

The client builds a canonical request (method, path, query, the headers it
names, the hash of the body), hashes it into a string to sign with the time
of ``X-Sdk-Date``, and sends the HMAC-SHA256 of that string under its secret
key in ``Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex``.
The server rebuilds the same canonical request from what it received and
compares the signatures in constant time.

The hash of the body in the canonical request binds the signature to the body:
a declared ``X-Sdk-Content-Sha256`` must be the body's SHA-256, and
``UNSIGNED-PAYLOAD`` is accepted only where the SDK sends it (spec section 1).
A signature of a state-changing request is accepted once (:func:`claim`).
"""

import base64
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction

from swr.models import UsedSignature

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
CONTENT_HASH_HEADER = "X-Sdk-Content-Sha256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Content types whose bodies the SDK hashes; for any other it declares UNSIGNED-PAYLOAD
# (huaweicloudsdkcore.signer.signer.Signer._process_content_header).
HASHED_CONTENT_TYPES = ("application/json", "application/bson")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class SignatureError(ValueError):
    """A signed request that cannot be accepted; the message says why, for the client."""


_AUTHORIZATION = re.compile(
    rf"^{ALGORITHM}\s+Access=(?P<access>[^,\s]+),\s*SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)$"
)


@dataclass(frozen=True)
class Authorization:
    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The parts of an ``SDK-HMAC-SHA256`` Authorization header; None when it is not of that form."""
    match = _AUTHORIZATION.match(value.strip())
    if match is None:
        return None
    return Authorization(match["access"], match["headers"].split(";"), match["signature"].lower())


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Each path segment percent-encoded, with a trailing slash."""
    uri = "/".join(_encode(segment) for segment in path.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query_string: str) -> str:
    pairs = sorted(parse_qsl(query_string, keep_blank_values=True))
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in pairs)


def sends_unsigned_payload(content_type: str | None) -> bool:
    """Whether the official SDK declares ``UNSIGNED-PAYLOAD`` for a body of this Content-Type.

    It does so whenever a Content-Type is set and is not JSON or BSON: form and multipart bodies, streams.
    """
    # Media types are case-insensitive (RFC 9110, 8.3.1): "Application/JSON" is parsed as JSON, so it is hashed too.
    return bool(content_type) and not content_type.strip().lower().startswith(HASHED_CONTENT_TYPES)


def payload_hash(body: bytes, declared: str | None, content_type: str | None) -> str:
    """The last line of the canonical request: the hex SHA-256 of ``body``, as the SDK's signer writes it.

    ``declared`` is the X-Sdk-Content-Sha256 header (None when absent). A declared digest must be the
    body's (compared in constant time); ``UNSIGNED-PAYLOAD`` is accepted only for the Content-Types the SDK
    sends it for. Raises SignatureError otherwise.
    """
    actual = hashlib.sha256(body).hexdigest() if body else EMPTY_HASH
    if declared is None:
        return actual
    if declared == UNSIGNED_PAYLOAD:
        if not sends_unsigned_payload(content_type):
            raise SignatureError(
                f"{CONTENT_HASH_HEADER}: {UNSIGNED_PAYLOAD} is accepted only for form, multipart and stream "
                f"bodies, not for Content-Type {content_type or '(none)'!r}; sign the SHA-256 of the body."
            )
        return EMPTY_HASH if not body else declared
    if _HEX_DIGEST.fullmatch(declared):
        if not hmac.compare_digest(declared.lower(), actual):
            raise SignatureError(
                f"{CONTENT_HASH_HEADER} is not the SHA-256 of the body that was sent; "
                "sign the body you send (or leave the header out and let the signer hash it)."
            )
        return EMPTY_HASH if not body else declared
    raise SignatureError(
        f"{CONTENT_HASH_HEADER} must be the hex SHA-256 of the body or {UNSIGNED_PAYLOAD}, not {declared[:80]!r}."
    )


def canonical_request(
    *,
    method: str,
    path: str,
    query_string: str,
    headers: dict[str, str],
    signed_headers: list[str],
    body: bytes,
    content_hash: str | None = None,
    content_type: str | None = None,
) -> str:
    """``headers`` maps lower-case names to values; only ``signed_headers`` are used, in that order.

    ``content_hash`` is the X-Sdk-Content-Sha256 header and ``content_type`` the Content-Type, as sent (None
    when absent); see :func:`payload_hash`, whose SignatureError this raises.
    """
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_string),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash(body, content_hash, content_type),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def parse_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


# Each signature of a state-changing request is accepted once.


def claim(signature_hex: str, signed_at: datetime, *, now: datetime) -> bool:
    """Record a signature as used; False when it was used before (a replay).

    The record (swr.models.UsedSignature) lives as long as the signature's X-Sdk-Date is accepted: until
    ``signed_at`` plus the allowed skew, at most twice the skew from now. The database's unique constraint
    decides between two identical requests racing on any worker or node: exactly one claims the signature.
    Records past their time are removed here, so the table holds the last 15 to 30 minutes of signed changes.
    """
    UsedSignature.objects.filter(expires_at__lt=now).delete()
    expires_at = now + timedelta(seconds=claim_lifetime(signed_at, now=now))
    try:
        with transaction.atomic():
            UsedSignature.objects.create(signature=signature_hex.lower(), expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def claim_lifetime(signed_at: datetime, *, now: datetime) -> int:
    """Seconds a used signature is remembered: until its X-Sdk-Date is out of the accepted window, plus two."""
    lifetime = signed_at + settings.SWR_SIGNATURE_MAX_SKEW - now
    return max(1, int(lifetime.total_seconds()) + 2)


def release(signature_hex: str) -> None:
    """Give a claimed signature back: its request changed nothing (the server failed), so a retry may use it."""
    UsedSignature.objects.filter(signature=signature_hex.lower()).delete()


# Issuing and storing keys.

_AK_ALPHABET = string.ascii_uppercase + string.digits


def new_key_pair() -> tuple[str, str]:
    """A fresh access key (20 characters, as Huawei Cloud's) and a 40-character secret key."""
    access_key = "".join(secrets.choice(_AK_ALPHABET) for _ in range(20))
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    return access_key, secret_key


def _fernet() -> Fernet:
    material = settings.SWR_CREDENTIALS_KEY or f"swr-credentials:{settings.SECRET_KEY}"
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def encrypt_secret(secret_key: str) -> str:
    return _fernet().encrypt(secret_key.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    """The secret key, or None when it was encrypted under another key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None
