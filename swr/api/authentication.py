"""Authentication: X-Auth-Token bearer tokens and SDK-HMAC-SHA256 AK/SK signatures (spec section 1)."""

import hmac
import logging

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from swr import selectors, signing
from swr.api.errors import Refused
from swr.models import ApiToken

HEADER = "X-Auth-Token"
# request.META's name of the header, read directly: no HttpHeaders mapping built per request
HEADER_META_KEY = "HTTP_" + HEADER.upper().replace("-", "_")
# The same answer for an access key that does not exist, is disabled, belongs to a deactivated user or
# cannot be decrypted here: none of them tells whether the key exists (spec section 1).
UNUSABLE_ACCESS_KEY = "Authentication failed: unknown or disabled access key."
# Methods whose signed requests may be sent any number of times; every other signature is accepted once.
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger("swr.api")


class TokenAuthentication(BaseAuthentication):
    """A bearer token in X-Auth-Token, looked up by its SHA-256 in one query.

    An unknown token and one of a deactivated user read the same; "revoked" and "expired" are told apart
    because only the holder of the token (a 256-bit secret) can see them, and they tell the holder what to do.
    """

    def authenticate(self, request):
        raw = request.META.get(HEADER_META_KEY)
        if raw is None:
            return None
        token = selectors.api_token(ApiToken.hash_key(raw.strip()))
        if token is None or not token.user.is_active:
            raise Refused("Authentication failed: the token is not valid.")
        if token.revoked_at is not None:
            raise Refused("Authentication failed: the token has been revoked.")
        if token.expires_at <= timezone.now():
            raise Refused("Authentication failed: the token has expired.")
        return token.user, token

    def authenticate_header(self, request):
        return f'{HEADER} realm="swr"'


def _header_value(request, name: str) -> str:
    """A request header as the client wrote it: the SDK sends UTF-8, which WSGI hands over as Latin-1."""
    meta = request.META
    if name == "content-type":
        raw = meta.get("CONTENT_TYPE", "")
    elif name == "content-length":
        raw = meta.get("CONTENT_LENGTH", "")
    else:
        raw = meta.get("HTTP_" + name.upper().replace("-", "_"), "")
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _optional_header(request, name: str) -> str | None:
    """A header's value as sent, or None when the request does not carry it."""
    meta_key = "HTTP_" + name.upper().replace("-", "_")
    return _header_value(request, name.lower()) if meta_key in request.META else None


def release_claimed_signature(request) -> None:
    """Give back the signature this request claimed, when it had one: the server failed to answer it (5xx)
    and changed nothing, and the SDK's retry within the same second carries the same signature."""
    signature = getattr(request, "claimed_signature", None)
    if signature is None:
        return
    try:
        signing.release(signature)
    except Exception:  # the store is away too; the signature stays used and the client signs again
        logger.warning("Could not give back the signature of a failed request", exc_info=True)


class SignatureAuthentication(BaseAuthentication):
    """``Authorization: SDK-HMAC-SHA256 ...`` with ``X-Sdk-Date``, as the Huawei Cloud SDKs sign requests.

    Refused (401 SVCSTG.SWR.4010000): a malformed header; a date more than 15 minutes from now; an unknown,
    disabled or unusable key (one message for all); a body that does not match its declared hash; a
    signature that does not match; a signature of a POST/PUT/PATCH/DELETE that was accepted before.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(signing.ALGORITHM):
            return None
        authorization = signing.parse_authorization(header)
        if authorization is None:
            raise Refused("Authentication failed: malformed SDK-HMAC-SHA256 Authorization header.")
        sdk_date = request.META.get("HTTP_X_SDK_DATE", "")
        signed_at = signing.parse_date(sdk_date)
        if signed_at is None:
            raise Refused("Authentication failed: X-Sdk-Date is missing or not YYYYMMDDTHHMMSSZ.")
        if abs(timezone.now() - signed_at) > settings.SWR_SIGNATURE_MAX_SKEW:
            minutes = int(settings.SWR_SIGNATURE_MAX_SKEW.total_seconds() // 60)
            raise Refused(f"Authentication failed: X-Sdk-Date is more than {minutes} minutes from now.")
        if "x-sdk-date" not in authorization.signed_headers:
            raise Refused("Authentication failed: X-Sdk-Date must be a signed header.")
        key = selectors.access_key(authorization.access_key)
        if key is None or not key.is_active or not key.user.is_active:
            raise Refused(UNUSABLE_ACCESS_KEY)
        secret_key = signing.decrypt_secret(key.secret_encrypted)
        if secret_key is None:
            logger.warning(
                "Access key %s cannot be decrypted: it was stored under another SWR_CREDENTIALS_KEY", key.access_key
            )
            raise Refused(UNUSABLE_ACCESS_KEY)
        try:
            canonical = signing.canonical_request(
                method=request.method,
                path=request.path,
                query_string=request.META.get("QUERY_STRING", ""),
                headers={name: _header_value(request, name) for name in authorization.signed_headers},
                signed_headers=authorization.signed_headers,
                body=request.body,
                content_hash=_optional_header(request, signing.CONTENT_HASH_HEADER),
                content_type=request.META.get("CONTENT_TYPE"),
            )
        except signing.SignatureError as error:
            raise Refused(f"Authentication failed: {error}") from None
        expected = signing.signature(secret_key, signing.string_to_sign(canonical, sdk_date))
        if not hmac.compare_digest(expected, authorization.signature):
            raise Refused("Authentication failed: the signature does not match the request.")
        project_id = request.META.get("HTTP_X_PROJECT_ID")
        if project_id and key.user.tenant and project_id != key.user.tenant.project_id:
            raise Refused("Authentication failed: X-Project-Id is not the project of this access key.")
        if request.method not in REPEATABLE_METHODS:
            self._claim(request, authorization.signature, signed_at)
        return key.user, key

    @staticmethod
    def _claim(request, signature: str, signed_at) -> None:
        """Accept this signature once; the error handler gives it back when the server fails (5xx)."""
        if not signing.claim(signature, signed_at, now=timezone.now()):
            raise Refused(
                "Authentication failed: the signature was already used. A signed POST, PUT, PATCH or DELETE is "
                "accepted once; an identical request needs a new signature (a new X-Sdk-Date second, or a "
                "unique signed header such as X-Request-Id)."
            )
        request.claimed_signature = signature

    def authenticate_header(self, request):
        return signing.ALGORITHM
