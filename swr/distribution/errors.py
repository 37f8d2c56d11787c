"""The errors of the registry (OCI distribution-spec, "Error Codes"): each with its code, HTTP status and message.

Raised by the registry's services and views; rendered by swr/api/registry/errors.py as
``{"errors": [{"code": ..., "message": ..., "detail": ...}]}``, the body registry clients parse
(spec section 9), not SWR's error body.
"""

from http import HTTPStatus


class OciError(Exception):
    """An error answer of the registry routes; subclasses fix the OCI code, status and default message."""

    code = "UNSUPPORTED"
    status_code: int = HTTPStatus.BAD_REQUEST
    default_message = "The operation is unsupported."

    def __init__(self, message: str | None = None, *, detail=None, status_code: int | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code

    @property
    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


class BlobUnknown(OciError):
    code, status_code, default_message = "BLOB_UNKNOWN", HTTPStatus.NOT_FOUND, "blob unknown to registry"


class BlobUploadInvalid(OciError):
    code, status_code, default_message = "BLOB_UPLOAD_INVALID", HTTPStatus.BAD_REQUEST, "blob upload invalid"


class BlobUploadUnknown(OciError):
    code, status_code, default_message = "BLOB_UPLOAD_UNKNOWN", HTTPStatus.NOT_FOUND, "blob upload unknown to registry"


class DigestInvalid(OciError):
    code, status_code, default_message = (
        "DIGEST_INVALID",
        HTTPStatus.BAD_REQUEST,
        "provided digest did not match uploaded content",
    )


class ManifestBlobUnknown(OciError):
    code, status_code, default_message = (
        "MANIFEST_BLOB_UNKNOWN",
        HTTPStatus.BAD_REQUEST,
        "manifest references a manifest or blob unknown to registry",
    )


class ManifestInvalid(OciError):
    code, status_code, default_message = "MANIFEST_INVALID", HTTPStatus.BAD_REQUEST, "manifest invalid"


class ManifestUnknown(OciError):
    code, status_code, default_message = "MANIFEST_UNKNOWN", HTTPStatus.NOT_FOUND, "manifest unknown to registry"


class NameInvalid(OciError):
    code, status_code, default_message = "NAME_INVALID", HTTPStatus.BAD_REQUEST, "invalid repository name"


class NameUnknown(OciError):
    code, status_code, default_message = "NAME_UNKNOWN", HTTPStatus.NOT_FOUND, "repository name not known to registry"


class SizeInvalid(OciError):
    code, status_code, default_message = (
        "SIZE_INVALID",
        HTTPStatus.BAD_REQUEST,
        "provided length did not match content length",
    )


class RangeInvalid(OciError):
    """416. ``size``: the length in bytes of the blob whose Range could not be served, sent back as
    ``Content-Range: bytes */<size>`` (RFC 9110 section 15.5.17); None for an upload's chunk."""

    code, status_code, default_message = (
        "RANGE_INVALID",
        HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
        "invalid content range",
    )

    def __init__(self, message: str | None = None, *, size: int | None = None, detail=None):
        super().__init__(message, detail=detail)
        self.size = size


class Unauthorized(OciError):
    """401: no valid credentials. ``scope``: what the challenge asks a token for (``repository:<name>:pull``).

    ``reason``: the challenge's ``error`` (RFC 6750, section 3.1): ``invalid_token`` for a bearer token that
    cannot be used, ``insufficient_scope`` for one that does not cover the request (the client gets a new one).
    """

    code, status_code, default_message = "UNAUTHORIZED", HTTPStatus.UNAUTHORIZED, "authentication required"

    def __init__(self, message: str | None = None, *, scope: str | None = None, reason: str | None = None, detail=None):
        super().__init__(message, detail=detail)
        self.scope = scope
        self.reason = reason


class Denied(OciError):
    code, status_code, default_message = "DENIED", HTTPStatus.FORBIDDEN, "requested access to the resource is denied"


class Unsupported(OciError):
    code, status_code, default_message = "UNSUPPORTED", HTTPStatus.METHOD_NOT_ALLOWED, "the operation is unsupported"


class TooManyRequests(OciError):
    """429; ``retry_after``: the seconds to wait (the Retry-After header), when known."""

    code, status_code, default_message = "TOOMANYREQUESTS", HTTPStatus.TOO_MANY_REQUESTS, "too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, detail=None):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class Unavailable(OciError):
    """A failure of the service, not of the request (5xx): CNCF distribution's code for it."""

    code, status_code, default_message = "UNKNOWN", HTTPStatus.INTERNAL_SERVER_ERROR, "unknown error"
