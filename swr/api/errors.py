"""How every error answer of the service is rendered: DRF's and Django's exceptions turned into SWR errors.

The errors themselves (status, SWR code, message, body) are swr/errors.py's.
Here, every exception an answer can come from (raised by a view, by DRF, by
Django's URL resolver, or unhandled) becomes one of them (:func:`to_swr_error`)
and leaves with the body of spec section 1: through DRF's exception handler,
Django's error views (registry/urls.py, settings.CSRF_FAILURE_VIEW) or
:func:`only_get`.
"""

import logging
import re
import sys
from functools import wraps

from django import db
from django.conf import settings
from django.core import exceptions as django_exceptions
from django.http import Http404
from django.urls import Resolver404, resolve
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from psycopg_pool import PoolTimeout
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.settings import api_settings

from swr.distribution.errors import Unsupported
from swr.errors import (
    INTERNAL_ERROR,
    INVALID_IS_PUBLIC,
    INVALID_NAMESPACE_NAME,
    INVALID_PARAMETER,
    INVALID_PERMISSION,
    INVALID_REPOSITORY_NAME,
    AuthenticationFailed,
    BodyTooLarge,
    InternalError,
    MethodNotAllowed,
    PermissionTooLow,
    ServiceUnavailable,
    SwrError,
    UnsupportedMediaType,
    UrlNotFound,
    error_response,
)
from swr.middleware import answer_error, is_registry_route

logger = logging.getLogger("swr.api")

# Field errors whose validation code has an SWR code of its own. Their
# messages name what they are about, so they are shown without a field prefix.
CODE_BY_VALIDATION_CODE = {
    "invalid_namespace_name": INVALID_NAMESPACE_NAME,
    "invalid_repository_name": INVALID_REPOSITORY_NAME,
    "invalid_is_public": INVALID_IS_PUBLIC,
    "invalid_permission": INVALID_PERMISSION,
}


class Refused(exceptions.AuthenticationFailed):
    """An authentication class's refusal (401 SVCSTG.SWR.4010000 with ``message``), in the type DRF expects.

    DRF marks a request anonymous only when its authentication raises one of its own
    exceptions; :func:`to_swr_error` answers with ``error``, the SWR error it carries.
    """

    def __init__(self, message: str):
        self.error = AuthenticationFailed(message)
        super().__init__(message)


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
    if isinstance(exc, Refused):
        return exc.error
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
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return UnsupportedMediaType(
            f"{exc.detail} Send application/json, application/x-www-form-urlencoded or multipart/form-data."
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
    return Response(error.body, status=error.status_code, headers=headers)


# Django's error views (registry.urls handler400/403/404/500, settings.CSRF_FAILURE_VIEW).


def bad_request(request, exception=None):
    return answer_error(to_swr_error(exception) or SwrError("Bad request."), request)


def permission_denied(request, exception=None):
    return answer_error(PermissionTooLow(), request)


def page_not_found(request, exception=None):
    message = f"URL not found: {request.method} {request.path}"
    if is_registry_route(request.path_info):  # a registry client reads the OCI body (spec section 9)
        from swr.api.registry.errors import oci_error_response  # noqa: PLC0415 (it imports this module)

        return oci_error_response(Unsupported(message, status_code=404), request)
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
            response = error_response(MethodNotAllowed(f"Method {request.method} not allowed: use GET."))
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def server_error(request):
    # Django calls this from inside its except block: the exception is still at hand.
    error = to_swr_error(sys.exc_info()[1]) if sys.exc_info()[1] is not None else None
    return answer_error(error if isinstance(error, ServiceUnavailable) else InternalError(), request)
