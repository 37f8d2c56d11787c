"""Middleware for every request: request ids, HEAD answers, chunked bodies, request size limits, bodies read first."""

import io
import re
import uuid

from django.conf import settings
from django.http import UnreadablePostError

from swr.errors import (
    BodyTooLarge,
    HeadersTooLarge,
    RequestLineTooLong,
    SwrError,
    TransferCodingNotImplemented,
    error_response,
)
from swr.logs import current_request_id

_CLIENT_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


class RequestIdMiddleware:
    """Give every request an id (the client's X-Request-Id when it is short and printable)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client_id = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = client_id if _CLIENT_REQUEST_ID.fullmatch(client_id) else uuid.uuid4().hex
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-Id"] = request.request_id
        return response


class HeadWithoutBodyMiddleware:
    """A HEAD answer carries the headers of the GET answer and no body (RFC 9110, 9.3.2).

    Django's development server drops the body itself; gunicorn sends what the application gives and warns
    on every HEAD. The Content-Length of the GET answer stays.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD" and not response.streaming and response.content:
            length = len(response.content)
            response.content = b""
            response["Content-Length"] = str(length)
        return response


def is_registry_path(path: str) -> bool:
    """Whether ``path`` is a route of the registry (spec section 9: /v2/<name>/...), whose blob bodies are
    streamed, unlimited by SWR_MAX_BODY_BYTES, rather than read whole (the management API is /v2/manage/)."""
    return path.startswith("/v2/") and not path.startswith("/v2/manage/")


# The registry's token endpoint (swr/api/urls.py, "registry-token"): its view answers in the OCI body.
REGISTRY_TOKEN_PATH = "/service/token"


def is_registry_route(path: str) -> bool:
    """Whether ``path`` is one of the registry's routes, whose errors are OCI errors (spec section 9): those of
    :func:`is_registry_path` and the token endpoint. One definition for the application's own answers
    (:class:`RequestHeadLimitMiddleware`) and gunicorn's (registry/gunicorn_workers.py)."""
    return is_registry_path(path) or path == REGISTRY_TOKEN_PATH


def answer_error(error: SwrError, request):
    """``error``, an SWR error about the HTTP request itself, in the body the path's clients read: on the
    registry's routes (:func:`is_registry_route`) the OCI body (spec section 9; swr.api.registry.errors
    ``request_error`` gives the code), with the registry's API version header under /v2/ (the token endpoint
    sends none); elsewhere SWR's (spec section 1)."""
    if not is_registry_route(request.path_info):
        return error_response(error)
    # swr.api imports this module: the registry's modules are imported when first needed.
    from swr.api.registry.errors import oci_error_response, request_error  # noqa: PLC0415
    from swr.api.registry.views import API_VERSION_HEADER  # noqa: PLC0415

    response = oci_error_response(request_error(error), request)
    if is_registry_path(request.path_info):
        response[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    return response


def transfer_codings(environ) -> list[str]:
    """The transfer codings of the request's body (``Transfer-Encoding``), lower-case, in order."""
    return [coding.strip().lower() for coding in environ.get("HTTP_TRANSFER_ENCODING", "").split(",") if coding.strip()]


def is_chunked(environ) -> bool:
    """Whether the request's body is sent with ``Transfer-Encoding: chunked``."""
    return "chunked" in transfer_codings(environ)


class ChunkedBodyMiddleware:
    """WSGI middleware (registry.wsgi): a body sent with ``Transfer-Encoding: chunked`` is read like any other.

    gunicorn hands such a body over de-chunked, with no CONTENT_LENGTH, and says
    so with ``wsgi.input_terminated`` (the stream ends where the body ends); Django
    reads CONTENT_LENGTH bytes only, and would see an empty body. This reads the
    body, at most one byte past ``limit`` (SWR_MAX_BODY_BYTES), and gives Django
    those bytes with their length: :class:`BodySizeLimitMiddleware` then answers
    413 to one that is too large, as for any other body (spec section 1).
    """

    def __init__(self, application, limit: int):
        self.application = application
        self.limit = limit

    def __call__(self, environ, start_response):
        if (
            not environ.get("CONTENT_LENGTH")
            and environ.get("wsgi.input_terminated")
            and is_chunked(environ)
            and not is_registry_path(environ.get("PATH_INFO", ""))
        ):
            body = self._read(environ["wsgi.input"])
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)

    def _read(self, stream) -> bytes:
        chunks, size = [], 0
        while size <= self.limit:
            chunk = stream.read(min(64 * 1024, self.limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


class BodySizeLimitMiddleware:
    """Answer 413 to a body that is larger than SWR_MAX_BODY_BYTES, without parsing it.

    A moderately large body is read and dropped first: closing a connection
    with unread data makes the kernel reset it, and the client may then lose
    the 413 answer. Bodies beyond DRAIN_LIMIT are not read at all.

    Under WSGI, a chunked body arrives with its length set by :class:`ChunkedBodyMiddleware`,
    which reads it; only a server that cannot hand it over whole (Django's development
    server) leaves it without one, and the request is refused rather than read as empty.
    (Django's ASGI handler reads every body whole, chunked or not.)
    """

    DRAIN_LIMIT = 16 * 1024 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_registry_path(request.path_info):
            return self.get_response(request)  # blob bodies stream (swr/api/registry/views.py)
        raw = request.META.get("CONTENT_LENGTH") or ""
        if not raw and is_chunked(request.META) and "wsgi.input" in request.META:
            return answer_error(
                SwrError(
                    "This server cannot read a body sent with Transfer-Encoding: chunked (Django's development "
                    "server); send it with a Content-Length header."
                ),
                request,
            )
        # Digits only: int() would also read ' 10', '+10', '1_0' and other scripts' digits (spec section 1).
        if raw and not (raw.isascii() and raw.isdigit()):
            return answer_error(SwrError(f"Invalid Content-Length header: {raw!r}"), request)
        digits = raw.lstrip("0")
        # A length of more digits than the drain limit has is over it (and int() refuses over 4300 digits).
        length = int(digits or "0") if len(digits) <= len(str(self.DRAIN_LIMIT)) else self.DRAIN_LIMIT + 1
        if length > settings.SWR_MAX_BODY_BYTES:
            if length <= self.DRAIN_LIMIT:
                while request.read(64 * 1024):
                    pass
            return answer_error(BodyTooLarge(), request)
        return self.get_response(request)


class RequestHeadLimitMiddleware:
    """Answer 414 to a long request line, 431 to large or many headers and 501 to a body sent with a transfer
    coding other than chunked, with the SWR error body; on the registry's routes (:func:`is_registry_route`)
    with the OCI body (:func:`answer_error`: UNSUPPORTED, UNKNOWN for the 501).

    Transfer codings: gunicorn takes ``gzip``, ``deflate`` or ``compress`` before ``chunked`` and hands the
    body on still encoded; stored as it came, a blob would hold the compressed bytes, and a JSON body would not
    parse. Nothing here decodes them, so they are refused as RFC 9112 section 6.1 says (code
    SVCSTG.SWR.5011001, as gunicorn answers a coding it does not know itself); ``identity`` changes nothing.

    Limits (settings): the request line (``METHOD target HTTP/1.1``) at most
    SWR_MAX_REQUEST_LINE_BYTES (4 KiB); one header (``Name: value``, repeated
    headers counted together) at most SWR_MAX_HEADER_BYTES (8 KiB); at most
    SWR_MAX_HEADERS (100) headers. Codes SVCSTG.SWR.4141001 and SVCSTG.SWR.4311001
    (spec section 1); on the registry's routes code UNSUPPORTED with the same
    message and the details as ``detail`` (spec section 9; the 501: UNKNOWN).
    gunicorn's own limits (gunicorn.conf.py) lie above these, so that this answer comes first;
    gunicorn answers a head beyond them itself (registry/gunicorn_workers.py), in the same error body,
    or on the registry's routes in the OCI body when it read the path.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        error = self._check(request)
        if error is None:
            return self.get_response(request)
        return answer_error(error, request)

    @staticmethod
    def _check(request) -> SwrError | None:
        meta = request.META
        if unknown := [coding for coding in transfer_codings(meta) if coding not in ("chunked", "identity")]:
            return TransferCodingNotImplemented(
                f"Transfer-Encoding {unknown[0][:40]!r} is not supported: send the body with Content-Length or "
                "with 'Transfer-Encoding: chunked' alone."
            )
        # gunicorn passes the request target as the client sent it; other servers get it rebuilt.
        target = meta.get("RAW_URI") or request.get_full_path()
        line = len(request.method) + len(target) + len(meta.get("SERVER_PROTOCOL", "HTTP/1.1")) + 2
        limit = settings.SWR_MAX_REQUEST_LINE_BYTES
        if line > limit:
            return RequestLineTooLong(
                f"Request line too long: {line} bytes; the limit is {limit} bytes. Shorten the URL "
                "(its path and query string)."
            )
        headers = {
            key[5:] if key.startswith("HTTP_") else key: value
            for key, value in meta.items()
            if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        }
        if len(headers) > settings.SWR_MAX_HEADERS:
            return HeadersTooLarge(
                f"Too many request headers: {len(headers)}; the limit is {settings.SWR_MAX_HEADERS}."
            )
        limit = settings.SWR_MAX_HEADER_BYTES
        details = []
        for key, value in headers.items():
            size = len(key) + 2 + len(str(value))  # Name: value
            if size > limit:
                name = key.replace("_", "-").title()
                message = f"Request header {name} too large: {size} bytes; the limit is {limit}."
                details.append({"field": name, "error_msg": message})
        if details:
            return HeadersTooLarge(f"{details[0]['error_msg']} Send it shorter.", details=details)
        return None


class ReadBodyFirstMiddleware:
    """Read the request body whole before the request goes on to what takes a database connection.

    Authentication, sessions and views take a connection from the worker's pool
    (DJANGO_DB_POOL_SIZE) and keep it until the request ends. A client that
    announces a body and sends it slowly waits here instead, holding only its
    own greenlet (gunicorn.conf.py). Bodies are at most SWR_MAX_BODY_BYTES
    (BodySizeLimitMiddleware, before this one, answers larger ones), and the
    parsers would read them whole anyway. Only bodies announced by Content-Length
    are read here. A body that ends before its Content-Length (the client closed
    its side of the connection) or a connection that fails while the body is read
    answers 400 here, before authentication reads the database.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("CONTENT_LENGTH") not in (None, "", "0") and not is_registry_path(request.path_info):
            try:
                received = len(request.body)
            except UnreadablePostError:
                received = None
            length = int(request.META["CONTENT_LENGTH"])  # digits (BodySizeLimitMiddleware, before this one)
            if received is None or received < length:
                read = "" if received is None else f" after {received} of its {length} bytes"
                return error_response(SwrError(f"The request body ended{read} (Content-Length): send it whole."))
        return self.get_response(request)
