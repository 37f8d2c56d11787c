"""AK/SK request signatures as the Huawei Cloud SDKs make them (``SDK-HMAC-SHA256``).

The client builds a canonical request (method, path, query, the headers it
names, the hash of the body), hashes it into a string to sign with the time
of ``X-Sdk-Date``, and sends the HMAC-SHA256 of that string under its secret
key in ``Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex``.
The server rebuilds the same canonical request from what it received and
compares the signatures in constant time.
"""

import base64
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
CONTENT_HASH_HEADER = "X-Sdk-Content-Sha256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()

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


def payload_hash(body: bytes, declared: str | None) -> str:
    if not body:
        return EMPTY_HASH
    if declared:  # the SDK sends UNSIGNED-PAYLOAD for form and multipart bodies, and signs that header
        return declared
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    *, method: str, path: str, query_string: str, headers: dict[str, str], signed_headers: list[str], body: bytes
) -> str:
    """``headers`` maps lower-case names to values; only ``signed_headers`` are used, in that order."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_string),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash(body, headers.get(CONTENT_HASH_HEADER.lower())),
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
