"""Authentication: X-Auth-Token bearer tokens and SDK-HMAC-SHA256 AK/SK signatures."""

import hmac

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from swr import hotpath, signing
from swr.api.errors import AuthenticationFailed
from swr.models import ApiToken

HEADER = "X-Auth-Token"
# request.META's name of the header, read directly: no HttpHeaders mapping built per request
HEADER_META_KEY = "HTTP_" + HEADER.upper().replace("-", "_")


def namespace_to_load(request) -> str | None:
    """The organization a view will look up for this request, if it asked to have it loaded with the caller
    (``LookupMixin.namespace_loaded_with_caller``): the credential's query then loads both."""
    return getattr(request, "namespace_to_load", None)


class TokenAuthentication(BaseAuthentication):
    """A bearer token in X-Auth-Token, looked up by its SHA-256 in one query."""

    def authenticate(self, request):
        raw = request.META.get(HEADER_META_KEY)
        if raw is None:
            return None
        token = hotpath.api_token(ApiToken.hash_key(raw.strip()), namespace_to_load(request))
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Authentication failed: the token is not valid.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("Authentication failed: the token has been revoked.")
        if token.expires_at <= timezone.now():
            raise AuthenticationFailed("Authentication failed: the token has expired.")
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


class SignatureAuthentication(BaseAuthentication):
    """``Authorization: SDK-HMAC-SHA256 ...`` with ``X-Sdk-Date``, as the Huawei Cloud SDKs sign requests."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(signing.ALGORITHM):
            return None
        authorization = signing.parse_authorization(header)
        if authorization is None:
            raise AuthenticationFailed("Authentication failed: malformed SDK-HMAC-SHA256 Authorization header.")
        sdk_date = request.META.get("HTTP_X_SDK_DATE", "")
        signed_at = signing.parse_date(sdk_date)
        if signed_at is None:
            raise AuthenticationFailed("Authentication failed: X-Sdk-Date is missing or not YYYYMMDDTHHMMSSZ.")
        if abs(timezone.now() - signed_at) > settings.SWR_SIGNATURE_MAX_SKEW:
            raise AuthenticationFailed("Authentication failed: X-Sdk-Date is more than 15 minutes from now.")
        if "x-sdk-date" not in authorization.signed_headers:
            raise AuthenticationFailed("Authentication failed: X-Sdk-Date must be a signed header.")
        key = hotpath.access_key(authorization.access_key, namespace_to_load(request))
        if key is None or not key.user.is_active:
            raise AuthenticationFailed("Authentication failed: unknown access key.")
        if not key.is_active:
            raise AuthenticationFailed("Authentication failed: the access key is disabled.")
        secret_key = signing.decrypt_secret(key.secret_encrypted)
        if secret_key is None:
            raise AuthenticationFailed("Authentication failed: the access key cannot be used on this server.")
        canonical = signing.canonical_request(
            method=request.method,
            path=request.path,
            query_string=request.META.get("QUERY_STRING", ""),
            headers={name: _header_value(request, name) for name in authorization.signed_headers},
            signed_headers=authorization.signed_headers,
            body=request.body,
        )
        expected = signing.signature(secret_key, signing.string_to_sign(canonical, sdk_date))
        if not hmac.compare_digest(expected, authorization.signature):
            raise AuthenticationFailed("Authentication failed: the signature does not match the request.")
        project_id = request.META.get("HTTP_X_PROJECT_ID")
        if project_id and key.user.tenant and project_id != key.user.tenant.project_id:
            raise AuthenticationFailed("Authentication failed: X-Project-Id is not the project of this access key.")
        return key.user, key

    def authenticate_header(self, request):
        return signing.ALGORITHM
