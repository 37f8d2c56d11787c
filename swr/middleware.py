"""Middleware for every request: request ids, chunked bodies, the body size limit, messages made on demand."""

import io
import re
import uuid

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.utils.functional import SimpleLazyObject, empty

from swr.api.errors import BodyTooLarge, SwrError, error_response
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


def is_chunked(environ) -> bool:
    """Whether the request's body is sent with ``Transfer-Encoding: chunked``."""
    codings = environ.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in (coding.strip().lower() for coding in codings.split(","))


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
        if not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated") and is_chunked(environ):
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
        raw = request.META.get("CONTENT_LENGTH") or ""
        if not raw and is_chunked(request.META) and "wsgi.input" in request.META:
            return error_response(
                SwrError(
                    "This server cannot read a body sent with Transfer-Encoding: chunked (Django's development "
                    "server); send it with a Content-Length header."
                )
            )
        # Digits only: int() would also read ' 10', '+10', '1_0' and other scripts' digits (spec section 1).
        if raw and not (raw.isascii() and raw.isdigit()):
            return error_response(SwrError(f"Invalid Content-Length header: {raw!r}"))
        digits = raw.lstrip("0")
        # A length of more digits than the drain limit has is over it (and int() refuses over 4300 digits).
        length = int(digits or "0") if len(digits) <= len(str(self.DRAIN_LIMIT)) else self.DRAIN_LIMIT + 1
        if length > settings.SWR_MAX_BODY_BYTES:
            if length <= self.DRAIN_LIMIT:
                while request.read(64 * 1024):
                    pass
            return error_response(BodyTooLarge())
        return self.get_response(request)


class LazyMessageMiddleware(MessageMiddleware):
    """Django's message middleware, with each request's message storage made when it is first used.

    The admin's pages store and show messages; API requests never do, and making
    the storage (a signed-cookie store and a session store) is most of what the
    middleware would cost them. A storage that was never made has nothing to save.
    """

    def process_request(self, request):
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request, response):
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
