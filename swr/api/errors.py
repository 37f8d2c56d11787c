"""SWR error codes, the exceptions that carry them, and the one place that renders the error body.

Every error answer of the service, whether raised by a view, by DRF, by
Django's URL resolver or by an unhandled exception, leaves through
:func:`error_response` with the body of spec section 1.
"""

import logging
import re
import sys
from functools import wraps

from django import db
from django.conf import settings
from django.core import exceptions as django_exceptions
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger("swr.api")

INVALID_PARAMETER = "SVCSTG.SWR.4000014"
INVALID_NAMESPACE_NAME = "SVCSTG.SWR.4001028"
INVALID_REPOSITORY_NAME = "SVCSTG.SWR.4001029"
INVALID_IS_PUBLIC = "SVCSTG.SWR.4001009"
INVALID_PERMISSION = "SVCSTG.SWR.4001066"
NAMESPACE_QUOTA_EXCEEDED = "SVCSTG.SWR.4000097"
REPOSITORY_QUOTA_EXCEEDED = "SVCSTG.SWR.4000098"
AUTHENTICATION_FAILED = "SVCSTG.SWR.4010000"
OTHER_TENANT = "SVCSTG.SWR.4039001"
PERMISSION_TOO_LOW = "SVCSTG.SWR.4039002"
NAMESPACE_NOT_FOUND = "SVCSTG.SWR.4040058"
REPOSITORY_NOT_FOUND = "SVCSTG.SWR.4040010"
PERMISSION_NOT_FOUND = "SVCSTG.SWR.4040078"
URL_NOT_FOUND = "SVCSTG.SWR.4040083"
METHOD_NOT_ALLOWED = "SVCSTG.SWR.4050000"
NAMESPACE_NOT_EMPTY = "SVCSTG.SWR.4060074"
NAMESPACE_EXISTS = "SVCSTG.SWR.4090060"
REPOSITORY_EXISTS = "SVCSTG.SWR.4090006"
PERMISSION_EXISTS = "SVCSTG.SWR.4090076"
LOGIN_THROTTLED = "SVCSTG.SWR.4290001"
BODY_TOO_LARGE = "SVCSTG.SWR.4131001"
REQUEST_LINE_TOO_LONG = "SVCSTG.SWR.4141001"
HEADERS_TOO_LARGE = "SVCSTG.SWR.4311001"
EXPECTATION_FAILED = "SVCSTG.SWR.4171001"
UNSUPPORTED_MEDIA_TYPE = "SVCSTG.SWR.4150000"
INTERNAL_ERROR = "SVCSTG.SWR.5000046"
TRANSFER_CODING_NOT_IMPLEMENTED = "SVCSTG.SWR.5011001"
SERVICE_UNAVAILABLE = "SVCSTG.SWR.5030000"

# Field errors whose validation code has an SWR code of its own. Their
# messages name what they are about, so they are shown without a field prefix.
CODE_BY_VALIDATION_CODE = {
    "invalid_namespace_name": INVALID_NAMESPACE_NAME,
    "invalid_repository_name": INVALID_REPOSITORY_NAME,
    "invalid_is_public": INVALID_IS_PUBLIC,
    "invalid_permission": INVALID_PERMISSION,
}


class SwrError(exceptions.APIException):
    """An error answer with an SWR error code; subclasses fix status, code and default message."""

    status_code = status.HTTP_400_BAD_REQUEST
    error_code = INVALID_PARAMETER
    default_detail = "Invalid parameter."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict] | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ):
        super().__init__(message or self.default_detail)
        self.message = str(self.detail)
        self.details = details or []
        if status_code is not None:
            self.status_code = status_code
        if error_code is not None:
            self.error_code = error_code


class AuthenticationFailed(SwrError):
    status_code = status.HTTP_401_UNAUTHORIZED
    error_code = AUTHENTICATION_FAILED
    default_detail = "Authentication failed: send a valid token in the X-Auth-Token header."


class OtherTenant(SwrError):
    status_code = status.HTTP_403_FORBIDDEN
    error_code = OTHER_TENANT
    default_detail = "The resource belongs to another tenant."


class PermissionTooLow(SwrError):
    status_code = status.HTTP_403_FORBIDDEN
    error_code = PERMISSION_TOO_LOW
    default_detail = "Your permission level is too low for this operation."


class NamespaceNotFound(SwrError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = NAMESPACE_NOT_FOUND
    default_detail = "Organization not found."


class RepositoryNotFound(SwrError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = REPOSITORY_NOT_FOUND
    default_detail = "Image repository not found."


class NamespaceNotEmpty(SwrError):
    status_code = status.HTTP_406_NOT_ACCEPTABLE
    error_code = NAMESPACE_NOT_EMPTY
    default_detail = "The organization still holds image repositories; delete them first."


class UrlNotFound(SwrError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = URL_NOT_FOUND
    default_detail = "URL not found."


class NamespaceExists(SwrError):
    status_code = status.HTTP_409_CONFLICT
    error_code = NAMESPACE_EXISTS
    default_detail = "The organization already exists."


class RepositoryExists(SwrError):
    status_code = status.HTTP_409_CONFLICT
    error_code = REPOSITORY_EXISTS
    default_detail = "The image repository already exists in this organization."


class NamespaceQuotaExceeded(SwrError):
    error_code = NAMESPACE_QUOTA_EXCEEDED
    default_detail = "The tenant's organization quota is used up."


class RepositoryQuotaExceeded(SwrError):
    error_code = REPOSITORY_QUOTA_EXCEEDED
    default_detail = "The tenant's image repository quota is used up."


class PermissionExists(SwrError):
    status_code = status.HTTP_409_CONFLICT
    error_code = PERMISSION_EXISTS
    default_detail = "The permission entry already exists."


class PermissionNotFound(SwrError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = PERMISSION_NOT_FOUND
    default_detail = "Permission entry not found."


class BodyTooLarge(SwrError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    error_code = BODY_TOO_LARGE
    default_detail = f"Request body too large: the limit is {settings.SWR_MAX_BODY_BYTES / 1024 / 1024:g} MiB."


class LoginThrottled(SwrError):
    """Too many failed password logins for a user name; ``wait`` is the Retry-After in seconds."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    error_code = LOGIN_THROTTLED
    default_detail = "Too many failed logins for this user name; try again after Retry-After seconds."

    def __init__(self, message: str | None = None, *, wait: int):
        super().__init__(message)
        self.wait = wait


class RequestLineTooLong(SwrError):
    status_code = status.HTTP_414_REQUEST_URI_TOO_LONG
    error_code = REQUEST_LINE_TOO_LONG
    default_detail = "Request line too long: shorten the URL."


class HeadersTooLarge(SwrError):
    status_code = status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE
    error_code = HEADERS_TOO_LARGE
    default_detail = "Request headers too large."


class ServiceUnavailable(SwrError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = SERVICE_UNAVAILABLE
    default_detail = "The database is unreachable; try again shortly."


class InternalError(SwrError):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    error_code = INTERNAL_ERROR
    default_detail = "Internal error. The details are in the server log."


def error_body(code: str, message: str, details: list[dict] | None = None) -> dict:
    """The SWR error body, in the current and the older field names."""
    return {
        "error_code": code,
        "error_msg": message,
        "errorCode": code,
        "errorMessage": message,
        "details": details or [],
    }


def error_response(exc: SwrError) -> JsonResponse:
    """A plain Django response with the error body, for errors raised outside DRF's views."""
    return JsonResponse(error_body(exc.error_code, exc.message, exc.details), status=exc.status_code)


def _field_details(detail, field: str | None = None) -> list[dict]:
    """Flatten a DRF ValidationError detail into [{"field", "error_msg", "code"}, ...]."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = None if key == api_settings.NON_FIELD_ERRORS_KEY else key
            items += _field_details(value, f"{field}.{name}" if field and name else (name or field))
        return items
    if isinstance(detail, list):
        return [item for value in detail for item in _field_details(value, field)]
    return [{"field": field, "error_msg": str(detail), "code": getattr(detail, "code", None)}]


def from_validation_error(exc: exceptions.ValidationError) -> SwrError:
    """Pick the SWR code and the headline message of a validation error from its first problem."""
    items = _field_details(exc.detail) or [{"field": None, "error_msg": "Invalid parameter.", "code": None}]
    first = items[0]
    code = CODE_BY_VALIDATION_CODE.get(first["code"])
    message = first["error_msg"]
    if code is None and first["field"]:
        message = f"Invalid {first['field']}: {message}"
    details = [{"field": item["field"], "error_msg": item["error_msg"]} for item in items]
    return SwrError(message, details=details, error_code=code or INVALID_PARAMETER)


def suspicious_operation_error(exc: django_exceptions.SuspiciousOperation) -> SwrError:
    """The 400 for a request Django refuses as suspicious, in words for the client.

    Django's own messages are written for the operator ("You may need to add 'x' to
    ALLOWED_HOSTS", setting names); they go to the log, not to the client.
    """
    if isinstance(exc, django_exceptions.DisallowedHost):
        return SwrError("Invalid Host header.")
    if isinstance(exc, django_exceptions.TooManyFieldsSent):
        return SwrError(f"Too many fields in the request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}.")
    if isinstance(exc, django_exceptions.TooManyFilesSent):
        return SwrError(f"Too many files in the request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}.")
    if isinstance(exc, django_exceptions.SuspiciousMultipartForm):
        return SwrError("Malformed multipart/form-data body.")
    return SwrError("Invalid request.")


def _transactions_collided(exc: Exception) -> bool:
    """A deadlock or a serialization failure (SQLSTATE class 40): the database is there and answered.

    The services take their locks in one order (swr.services) so that none can happen: one that
    does is a bug, answered 500 and logged with its traceback, not 503 "unreachable".
    """
    return str(getattr(exc.__cause__, "sqlstate", None) or "").startswith("40")


def _no_free_connection(exc: Exception) -> bool:
    """Whether a request waited for a connection of the pool (DJANGO_DB_POOL_SIZE) in vain (psycopg_pool's
    PoolTimeout): under load as much as with the database away, so the answer says both."""
    return isinstance(exc.__cause__, PoolTimeout)


def to_swr_error(exc: Exception) -> SwrError | None:
    """Translate any exception the service can meet into an SwrError; None when it is a bug."""
    if isinstance(exc, SwrError):
        return exc
    if isinstance(exc, db.OperationalError | db.InterfaceError) and not _transactions_collided(exc):
        # The database is down, unreachable or too slow: a passing condition, not a bug of the request.
        if _no_free_connection(exc):
            # Every connection of this worker's pool stayed busy (load), or none could be made (database away).
            logger.warning("No database connection free: %s", exc)
            return ServiceUnavailable(
                "No database connection came free in time: the server is busy or its database is away; "
                "try again shortly."
            )
        logger.warning("Database unavailable: %s", exc, exc_info=exc)
        return ServiceUnavailable()
    if isinstance(exc, django_exceptions.ValidationError):
        exc = exceptions.ValidationError(get_error_detail(exc))
    if isinstance(exc, exceptions.ValidationError):
        return from_validation_error(exc)
    if isinstance(exc, django_exceptions.RequestDataTooBig):
        return BodyTooLarge()
    if isinstance(exc, django_exceptions.SuspiciousOperation):
        return suspicious_operation_error(exc)
    if isinstance(exc, Http404):
        return UrlNotFound()
    if isinstance(exc, exceptions.ParseError):
        return SwrError(f"Malformed request body: {exc.detail}")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return AuthenticationFailed(
            None if isinstance(exc, exceptions.NotAuthenticated) else f"Authentication failed: {exc.detail}"
        )
    if isinstance(exc, exceptions.PermissionDenied):
        return PermissionTooLow(str(exc.detail))
    if isinstance(exc, django_exceptions.PermissionDenied):
        return PermissionTooLow()
    if isinstance(exc, exceptions.NotFound):
        return UrlNotFound()
    if isinstance(exc, exceptions.MethodNotAllowed):
        return SwrError(str(exc.detail), status_code=status.HTTP_405_METHOD_NOT_ALLOWED, error_code=METHOD_NOT_ALLOWED)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return SwrError(
            f"{exc.detail} Send application/json, application/x-www-form-urlencoded or multipart/form-data.",
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            error_code=UNSUPPORTED_MEDIA_TYPE,
        )
    if isinstance(exc, exceptions.APIException):
        return SwrError(
            str(exc.detail),
            status_code=exc.status_code,
            error_code=INVALID_PARAMETER if exc.status_code < 500 else INTERNAL_ERROR,
        )
    return None


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception of an API view becomes the SWR error body."""
    error = to_swr_error(exc)
    if error is None:
        logger.exception("Unhandled error in %s", type(context.get("view")).__name__, exc_info=exc)
        error = InternalError()
    if error.status_code >= 500:
        from swr.api.authentication import release_claimed_signature  # it imports this module

        release_claimed_signature(context.get("request"))
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(
        error_body(error.error_code, error.message, error.details), status=error.status_code, headers=headers
    )


# Django's error views (registry.urls handler400/403/404/500, settings.CSRF_FAILURE_VIEW).


def bad_request(request, exception=None):
    return error_response(to_swr_error(exception) or SwrError("Bad request."))


def permission_denied(request, exception=None):
    return error_response(PermissionTooLow())


def page_not_found(request, exception=None):
    message = f"URL not found: {request.method} {request.path}"
    if request.path.endswith("/") and request.path != "/" and _is_api_path(request.path_info.rstrip("/")):
        message += " (API paths have no trailing slash)"
    elif _REPOSITORY_WITH_SLASH.match(request.path_info):
        message += " (write each '/' of a repository name as '$': nginx/web is nginx$web)"
    return error_response(UrlNotFound(message))


# A repository path whose name was written with '/' (or %2F) instead of '$' (spec section 1).
_REPOSITORY_WITH_SLASH = re.compile(r"^/v2/manage/namespaces/[^/]+/repos/[^/]+/.")


def _is_api_path(path: str) -> bool:
    """Whether ``path`` is a route of the service's own, not of the admin site (whose URLs end in '/')."""
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.app_name != "admin"


def csrf_failure(request, reason=""):
    """A request that fails Django's CSRF check: 403 with the error body; the admin's forms keep their own page."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.app_name == "admin":
        return csrf.csrf_failure(request, reason=reason)
    return error_response(PermissionTooLow(f"CSRF verification failed: {reason}"))


def only_get(view):
    """Let ``view`` answer GET and HEAD only: 405 with the error body for any other method.

    For the routes outside the API (health checks, Swagger UI), whose views would
    otherwise answer other methods with HTML or fail. Such a view changes nothing,
    so it needs no CSRF check: without the exemption, Django would answer a POST
    with its HTML CSRF page before the 405.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = error_response(
                SwrError(
                    f"Method {request.method} not allowed: use GET.",
                    status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
                    error_code=METHOD_NOT_ALLOWED,
                )
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def server_error(request):
    # Django calls this from inside its except block: the exception is still at hand.
    error = to_swr_error(sys.exc_info()[1]) if sys.exc_info()[1] is not None else None
    return error_response(error if isinstance(error, ServiceUnavailable) else InternalError())
