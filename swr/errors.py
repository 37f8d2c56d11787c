"""The errors of the service: each an exception with its HTTP status, its SWR error code and a message.

Plain Python, raised by the domain (services, policy, models' callers), the
middleware and the admin alike; they know nothing of DRF. Each carries the
error body of spec section 1 (:attr:`SwrError.body`). The API layer
(swr/api/errors.py) turns DRF's and Django's own exceptions into these, and
every one of them into the answer.
"""

from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse

INVALID_PARAMETER = "SVCSTG.SWR.4000014"
INVALID_NAMESPACE_NAME = "SVCSTG.SWR.4001028"
INVALID_REPOSITORY_NAME = "SVCSTG.SWR.4001029"
INVALID_IS_PUBLIC = "SVCSTG.SWR.4001009"
INVALID_PERMISSION = "SVCSTG.SWR.4001066"
INVALID_TAG_NAME = "SVCSTG.SWR.4009021"
NAMESPACE_QUOTA_EXCEEDED = "SVCSTG.SWR.4000097"
REPOSITORY_QUOTA_EXCEEDED = "SVCSTG.SWR.4000098"
AUTHENTICATION_FAILED = "SVCSTG.SWR.4010000"
OTHER_TENANT = "SVCSTG.SWR.4039001"
PERMISSION_TOO_LOW = "SVCSTG.SWR.4039002"
NAMESPACE_NOT_FOUND = "SVCSTG.SWR.4040058"
REPOSITORY_NOT_FOUND = "SVCSTG.SWR.4040010"
PERMISSION_NOT_FOUND = "SVCSTG.SWR.4040078"
URL_NOT_FOUND = "SVCSTG.SWR.4040083"
TAG_NOT_FOUND = "SVCSTG.SWR.4040048"
METHOD_NOT_ALLOWED = "SVCSTG.SWR.4050000"
NAMESPACE_NOT_EMPTY = "SVCSTG.SWR.4060074"
NAMESPACE_EXISTS = "SVCSTG.SWR.4090060"
REPOSITORY_EXISTS = "SVCSTG.SWR.4090006"
PERMISSION_EXISTS = "SVCSTG.SWR.4090076"
TAG_EXISTS = "SVCSTG.SWR.4090082"
SHARE_EXISTS = "SVCSTG.SWR.4090083"
SUBRESOURCE_NOT_FOUND = "SVCSTG.SWR.4040084"
LOGIN_THROTTLED = "SVCSTG.SWR.4290001"
BODY_TOO_LARGE = "SVCSTG.SWR.4131001"
REQUEST_LINE_TOO_LONG = "SVCSTG.SWR.4141001"
HEADERS_TOO_LARGE = "SVCSTG.SWR.4311001"
EXPECTATION_FAILED = "SVCSTG.SWR.4171001"
UNSUPPORTED_MEDIA_TYPE = "SVCSTG.SWR.4150000"
INTERNAL_ERROR = "SVCSTG.SWR.5000046"
TRANSFER_CODING_NOT_IMPLEMENTED = "SVCSTG.SWR.5011001"
SERVICE_UNAVAILABLE = "SVCSTG.SWR.5030000"


def error_body(code: str, message: str, details: list[dict] | None = None) -> dict:
    """The SWR error body (spec section 1), in the current and the older field names."""
    return {
        "error_code": code,
        "error_msg": message,
        "errorCode": code,
        "errorMessage": message,
        "details": details or [],
    }


class SwrError(Exception):
    """An error answer with an SWR error code; subclasses fix status, code and default message.

    ``details``: ``[{"field": ..., "error_msg": ...}, ...]``, one per problem found.
    """

    status_code: int = HTTPStatus.BAD_REQUEST
    error_code: str = INVALID_PARAMETER
    default_message: str = "Invalid parameter."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict] | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ):
        self.message = str(message or self.default_message)
        super().__init__(self.message)
        self.details = details or []
        if status_code is not None:
            self.status_code = status_code
        if error_code is not None:
            self.error_code = error_code

    @property
    def body(self) -> dict:
        """The error body of this error (spec section 1)."""
        return error_body(self.error_code, self.message, self.details)


def error_response(error: SwrError) -> JsonResponse:
    """A plain Django response with ``error``'s status and body, for answers given outside DRF's views
    (middleware, health checks, Django's error views, the admin's refusals)."""
    return JsonResponse(error.body, status=error.status_code)


class AuthenticationFailed(SwrError):
    status_code = HTTPStatus.UNAUTHORIZED
    error_code = AUTHENTICATION_FAILED
    default_message = "Authentication failed: send a valid token in the X-Auth-Token header."


class OtherTenant(SwrError):
    status_code = HTTPStatus.FORBIDDEN
    error_code = OTHER_TENANT
    default_message = "The resource belongs to another tenant."


class PermissionTooLow(SwrError):
    status_code = HTTPStatus.FORBIDDEN
    error_code = PERMISSION_TOO_LOW
    default_message = "Your permission level is too low for this operation."


class NamespaceNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = NAMESPACE_NOT_FOUND
    default_message = "Organization not found."


class RepositoryNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = REPOSITORY_NOT_FOUND
    default_message = "Image repository not found."


class NamespaceNotEmpty(SwrError):
    status_code = HTTPStatus.NOT_ACCEPTABLE
    error_code = NAMESPACE_NOT_EMPTY
    default_message = "The organization still holds image repositories; delete them first."


class UrlNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = URL_NOT_FOUND
    default_message = "URL not found."


class MethodNotAllowed(SwrError):
    status_code = HTTPStatus.METHOD_NOT_ALLOWED
    error_code = METHOD_NOT_ALLOWED
    default_message = "Method not allowed."


class UnsupportedMediaType(SwrError):
    status_code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    error_code = UNSUPPORTED_MEDIA_TYPE
    default_message = "Unsupported media type."


class NamespaceExists(SwrError):
    status_code = HTTPStatus.CONFLICT
    error_code = NAMESPACE_EXISTS
    default_message = "The organization already exists."


class RepositoryExists(SwrError):
    status_code = HTTPStatus.CONFLICT
    error_code = REPOSITORY_EXISTS
    default_message = "The image repository already exists in this organization."


class NamespaceQuotaExceeded(SwrError):
    error_code = NAMESPACE_QUOTA_EXCEEDED
    default_message = "The tenant's organization quota is used up."


class RepositoryQuotaExceeded(SwrError):
    error_code = REPOSITORY_QUOTA_EXCEEDED
    default_message = "The tenant's image repository quota is used up."


class PermissionExists(SwrError):
    status_code = HTTPStatus.CONFLICT
    error_code = PERMISSION_EXISTS
    default_message = "The permission entry already exists."


class PermissionNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = PERMISSION_NOT_FOUND
    default_message = "Permission entry not found."


class InvalidTagName(SwrError):
    error_code = INVALID_TAG_NAME
    default_message = "Invalid image tag name: a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}."


class TagNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = TAG_NOT_FOUND
    default_message = "Image tag not found."


class TagExists(SwrError):
    status_code = HTTPStatus.CONFLICT
    error_code = TAG_EXISTS
    default_message = "The image tag already exists; send override true to move it."


class ShareExists(SwrError):
    status_code = HTTPStatus.CONFLICT
    error_code = SHARE_EXISTS
    default_message = "The image repository is already shared with that tenant."


class ShareNotFound(SwrError):
    status_code = HTTPStatus.NOT_FOUND
    error_code = SUBRESOURCE_NOT_FOUND
    default_message = "The image repository is not shared with that tenant."


class BodyTooLarge(SwrError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    error_code = BODY_TOO_LARGE
    default_message = f"Request body too large: the limit is {settings.SWR_MAX_BODY_BYTES / 1024 / 1024:g} MiB."


class LoginThrottled(SwrError):
    """Too many failed password logins for a user name; ``wait`` is the Retry-After in seconds."""

    status_code = HTTPStatus.TOO_MANY_REQUESTS
    error_code = LOGIN_THROTTLED
    default_message = "Too many failed logins for this user name; try again after Retry-After seconds."

    def __init__(self, message: str | None = None, *, wait: int):
        super().__init__(message)
        self.wait = wait


class RequestLineTooLong(SwrError):
    status_code = HTTPStatus.REQUEST_URI_TOO_LONG
    error_code = REQUEST_LINE_TOO_LONG
    default_message = "Request line too long: shorten the URL."


class HeadersTooLarge(SwrError):
    status_code = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    error_code = HEADERS_TOO_LARGE
    default_message = "Request headers too large."


class TransferCodingNotImplemented(SwrError):
    """501 (RFC 9112 section 6.1): a request body sent with a transfer coding this service does not decode."""

    status_code = HTTPStatus.NOT_IMPLEMENTED
    error_code = TRANSFER_CODING_NOT_IMPLEMENTED
    default_message = "Send the body with Content-Length or with 'Transfer-Encoding: chunked'."


class ServiceUnavailable(SwrError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    error_code = SERVICE_UNAVAILABLE
    default_message = "The database is unreachable; try again shortly."


class InternalError(SwrError):
    status_code = HTTPStatus.INTERNAL_SERVER_ERROR
    error_code = INTERNAL_ERROR
    default_message = "Internal error. The details are in the server log."
