"""Middleware that applies to every request: request ids, request bodies (size, read first), messages made on demand."""

import re
import uuid

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import UnreadablePostError
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


class BodySizeLimitMiddleware:
    """Answer 413 to a body that is larger than SWR_MAX_BODY_BYTES, without parsing it.

    A moderately large body is read and dropped first: closing a connection
    with unread data makes the kernel reset it, and the client may then lose
    the 413 answer. Bodies beyond DRAIN_LIMIT are not read at all.
    """

    DRAIN_LIMIT = 16 * 1024 * 1024

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response(SwrError(f"Invalid Content-Length header: {raw!r}"))
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


class ReadBodyFirstMiddleware:
    """Read the request body whole before the request goes on to what takes a database connection.

    Authentication, sessions and views take a connection from the worker's pool
    (DJANGO_DB_POOL_SIZE) and keep it until the request ends. A client that
    announces a body and sends it slowly waits here instead, holding only its
    own greenlet (gunicorn.conf.py). Bodies are at most SWR_MAX_BODY_BYTES
    (BodySizeLimitMiddleware, before this one, answers larger ones), and the
    parsers would read them whole anyway. Only bodies announced by Content-Length
    are read here. A body cut short by the client arrives short (and fails to
    parse later); a connection that fails while the body is read answers 400.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("CONTENT_LENGTH") not in (None, "", "0"):
            try:
                _ = request.body
            except UnreadablePostError:
                return error_response(SwrError("The request body ended before its Content-Length."))
        return self.get_response(request)
