"""The registry's error answers: an OciError (swr/distribution/errors.py) as the body registry clients parse.

``{"errors": [{"code", "message", "detail"}]}`` with the error's status (spec section 9), never SWR's error
body. A 401 carries the Bearer challenge that tells a client where to get a token, and for what; a 429 its
Retry-After.
"""

from django.http import JsonResponse
from django.urls import reverse

from swr.api import hosts
from swr.api.errors import to_swr_error
from swr.distribution.errors import (
    Denied,
    NameInvalid,
    NameUnknown,
    OciError,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)


def token_realm(request) -> str:
    """The token endpoint, as the client reached this service: ``<base URL>/service/token``."""
    return request.build_absolute_uri(reverse("registry-token"))


def bearer_challenge(request, scope: str | None = None, reason: str | None = None) -> str:
    """``WWW-Authenticate`` of a 401 on the registry routes (spec section 9):
    ``Bearer realm="<base URL>/service/token",service="<registry host>",scope="<scope>"``, and RFC 6750's
    ``error`` when a token was sent and cannot be used (``reason``)."""
    value = f'Bearer realm="{token_realm(request)}",service="{hosts.registry_host(request)}"'
    if scope:
        value += f',scope="{scope}"'
    if reason:
        value += f',error="{reason}"'
    return value


def basic_challenge(request) -> str:
    """``WWW-Authenticate`` of a 401 of the token endpoint itself: it takes HTTP Basic credentials."""
    return f'Basic realm="{hosts.registry_host(request)}",charset="UTF-8"'


# The OCI kind of an SWR error's status where the registry has one, whatever refused: the request itself, or a
# service shared with the management API.
_BY_STATUS = {401: Unauthorized, 403: Denied, 413: SizeInvalid, 429: TooManyRequests}
# What only a shared service's refusal means on a registry route: the repository's name is at fault.
_SERVICE_BY_STATUS = {**_BY_STATUS, 404: NameUnknown, 409: Denied}


def request_error(error) -> OciError:
    """An SWR error (swr.errors.SwrError) about the HTTP request itself, answered before or around the
    registry's views (its head, its size, its Host: swr/middleware.py, swr/api/errors.py's handlers), as the
    registry answers it: its status and message, its details as ``detail``; the kind of its status where the
    registry has one (403 DENIED, 413 SIZE_INVALID, 429 TOOMANYREQUESTS), UNKNOWN for a failure of the service
    (5xx), else UNSUPPORTED: the request is at fault, not a name (as gunicorn's own answers say,
    registry/gunicorn_workers.py)."""
    detail = error.details or None
    if error.status_code >= 500:
        return Unavailable(error.message, status_code=error.status_code, detail=detail)
    found = _BY_STATUS.get(error.status_code, OciError)(error.message, detail=detail)
    found.status_code = error.status_code
    return found


def to_oci_error(exc: Exception) -> OciError | None:
    """Any exception a registry route can meet, as the OCI error to answer; None for a bug (answered 500
    UNKNOWN and logged by the caller). SWR errors (from services the management API shares, such as the
    repository a push creates), validation errors and an unreachable database keep their status and message."""
    if isinstance(exc, OciError):
        return exc
    error = to_swr_error(exc)
    if error is None:
        return None
    if error.status_code >= 500:
        return Unavailable(error.message, status_code=error.status_code)
    kind = _SERVICE_BY_STATUS.get(error.status_code)
    if kind is None:
        return (
            OciError(error.message, status_code=error.status_code)
            if error.status_code != 400
            else NameInvalid(error.message)
        )
    found = kind(error.message)
    found.status_code = error.status_code
    return found


def oci_error_response(error: OciError, request) -> JsonResponse:
    """``{"errors": [{"code", "message", "detail"}]}`` with the error's status, as JSON; a 401 carries the Bearer
    challenge (with the error's scope), a 429 its Retry-After, a 416 of a blob's Range the blob's length."""
    response = JsonResponse(error.body, status=error.status_code)
    if isinstance(error, Unauthorized):
        response["WWW-Authenticate"] = bearer_challenge(request, error.scope, error.reason)
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if isinstance(error, RangeInvalid) and error.size is not None:
        response["Content-Range"] = f"bytes */{error.size}"
    return response
