"""gunicorn workers whose own error answers carry the service's error body, not an HTML page.

gunicorn answers a request its HTTP parser refuses (a control character in a
header value, a space before a header's colon, a Content-Length that is not
plain digits or is sent twice, a folded header line, a Transfer-Encoding
other than chunked, a bad chunk size, a byte >= 0x80 in the request target,
an HTTP version other than 1.0/1.1, a request line or head beyond its limits
in gunicorn.conf.py) before the application runs, with
``Worker.handle_error``. Its documented behaviour is kept: the same status
for each exception, the same warning line (with the request id added) and the
same access-log entry; only the page changes: an error body in JSON
(``Content-Type: application/json``), ``Connection: close`` and an
``X-Request-Id`` (a new uuid4 hex, also in the warning line).

Which body: the one the application answers on that path. On the registry's
routes (the OCI distribution API: /v2/ and /v2/<name>/..., every /v2/ path
but /v2/manage/..., and its token endpoint /service/token, as
swr.middleware.is_registry_route says for the application too) the OCI body
of spec section 9, ``{"errors": [{"code": ..., "message": ...}]}``, plus
``Docker-Distribution-API-Version: registry/2.0`` under /v2/ as the registry
views add it; everywhere else, and when the path is unknown, the SWR error
body of spec section 1. The path is that of the request gunicorn was reading:
gunicorn hands ``handle_error`` no request when its parser fails on the head,
so the request being built is taken from the exception's traceback (see
:func:`refused_path`). It is unknown when gunicorn refused the request line
before reading its target: a line beyond limit_request_line (414), a method
that is not upper-case, a byte >= 0x80 or a control character in the target.

Statuses and codes (SWR; the message is the same in both bodies): 400
SVCSTG.SWR.4000014 ("Malformed HTTP request: <what gunicorn found>"), 414
SVCSTG.SWR.4141001, 431 SVCSTG.SWR.4311001, 417 SVCSTG.SWR.4171001 (an
``Expect`` other than 100-continue), 501 SVCSTG.SWR.5011001 (a transfer coding
gunicorn does not know), 500 SVCSTG.SWR.5000046 without details; any other
4xx (403, only with the PROXY protocol or TLS, neither configured)
SVCSTG.SWR.4000014. The OCI codes (:func:`answer_body`): 400, 414, 417 and
431 UNSUPPORTED, the code of the plain OciError, which the registry views also
give a malformed query parameter (an invalid ``n``): the fault is in the HTTP
request, not in a repository name, so not the NAME_INVALID that
swr.api.registry.errors.to_oci_error gives an SWR 400; 403 DENIED; 500 and
501 UNKNOWN, as to_oci_error gives a failure of the service. The body has no
``detail``, as the application's when there is none.

Loading: gunicorn.conf.py names these classes. This module imports only
gunicorn and the standard library (the gevent worker module imports gevent
without patching anything; the worker patches the standard library when it
starts). swr.errors, swr.middleware and swr.api.registry (which import Django)
are imported when the first error is answered: by then the worker has loaded
the application (after the fork and after gevent's patching for gevent
workers; in the master with preload_app for the others).
"""

import json
import uuid
from datetime import datetime
from ssl import SSLError
from urllib.parse import unquote

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.message import Request
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers import ggevent, gthread, sync

# The exceptions gunicorn's Worker.handle_error treats as the client's fault, with the status and reason it
# gives each (gunicorn 27, gunicorn/workers/base.py; the reason phrases of 500 and 501 made to match their
# status); any other exception is a 500.
_CLIENT_ERRORS = (
    ((http_errors.LimitRequestLine,), 414, "URI Too Long"),
    ((http_errors.LimitRequestHeaders,), 431, "Request Header Fields Too Large"),
    ((http_errors.ExpectationFailed,), 417, "Expectation Failed"),
    ((http_errors.UnsupportedTransferCoding,), 501, "Not Implemented"),
    ((http_errors.ConfigurationProblem,), 500, "Internal Server Error"),
    ((http_errors.ForbiddenProxyRequest, SSLError), 403, "Forbidden"),
    (
        (
            http_errors.InvalidRequestLine,
            http_errors.InvalidRequestMethod,
            http_errors.InvalidHTTPVersion,
            http_errors.InvalidHeader,
            http_errors.InvalidHeaderName,
            http_errors.InvalidProxyLine,
            http_errors.InvalidSchemeHeaders,
            http_errors.ObsoleteFolding,
            http_errors.InvalidH2CPreface,
            http_errors.InvalidChunkSize,
            http_errors.ChunkMissingTerminator,
            http_errors.InvalidChunkExtension,
        ),
        400,
        "Bad Request",
    ),
)
# What to do about each malformed request (400), after what gunicorn found.
_HINTS = (
    (http_errors.InvalidHTTPVersion, "send HTTP/1.1 (or HTTP/1.0) on the request line."),
    (http_errors.InvalidHeaderName, "a header name is letters, digits and '-', with no space before its colon."),
    (
        http_errors.InvalidHeader,
        "check that header: no control characters in its value; Content-Length is digits only and sent once; "
        "Transfer-Encoding is chunked and has no Content-Length beside it.",
    ),
    (http_errors.ObsoleteFolding, "write each header on one line."),
    (
        (http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator, http_errors.InvalidChunkExtension),
        "each chunk of a chunked body starts with its size in hexadecimal and ends with CRLF.",
    ),
    (
        (http_errors.InvalidRequestLine, http_errors.InvalidRequestMethod),
        "send 'METHOD /path HTTP/1.1', with the path percent-encoded (ASCII only).",
    ),
)
# Errors in what the application sent, not in what the client sent.
_APPLICATION_ERRORS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)
# What gunicorn found is quoted in the message, cut to this many characters (a header value may be 16 KiB).
_DETAIL_CHARS = 200


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(status, reason phrase) of a request gunicorn refused; None when the fault is not the client's (500)."""
    if isinstance(exc, _APPLICATION_ERRORS):
        return None
    for kinds, status, reason in _CLIENT_ERRORS:
        if isinstance(exc, kinds):
            return status, reason
    return None


def error_answer(status: int, exc: BaseException) -> tuple[str, str]:
    """(SWR error code, message) for a request gunicorn refused with ``status`` because of ``exc``."""
    from swr import errors  # noqa: PLC0415 (imports Django: only once the worker has loaded the application)

    found = str(exc)
    if len(found) > _DETAIL_CHARS:
        found = f"{found[:_DETAIL_CHARS]}..."
    if status == 414:
        return errors.REQUEST_LINE_TOO_LONG, f"Request line too long ({found}): shorten the URL."
    if status == 431:
        return errors.HEADERS_TOO_LARGE, f"Request headers too large ({found}): send fewer or shorter headers."
    if status == 417:
        return errors.EXPECTATION_FAILED, f"{found}: the only expectation understood is 'Expect: 100-continue'."
    if status == 501:
        return errors.TRANSFER_CODING_NOT_IMPLEMENTED, (
            f"{found}: send the body with Content-Length or with 'Transfer-Encoding: chunked'."
        )
    if status >= 500:
        return errors.INTERNAL_ERROR, errors.InternalError.default_message
    hint = next((hint for kinds, hint in _HINTS if isinstance(exc, kinds)), "")
    return errors.INVALID_PARAMETER, f"Malformed HTTP request: {found}{'; ' if hint else '.'}{hint}"


def refused_path(req, exc: BaseException) -> str | None:
    """The path of the request gunicorn refused, percent-decoded as the application's PATH_INFO would be; None
    when gunicorn had not read it (the request line itself was refused, or nothing was read).

    ``req``: the request ``handle_error`` was given. gunicorn gives None when its parser fails on the head (a
    request line or header it refuses, a head too large), and the request it was building is then found in the
    exception's traceback: the ``self`` of ``Request.__init__``, which reads the head, and of the methods it
    calls. Some of gunicorn's InvalidHeader errors carry it as well (``exc.req``)."""
    candidates = [req, getattr(exc, "req", None)]
    frame = exc.__traceback__
    while frame is not None:
        candidates.append(frame.tb_frame.f_locals.get("self"))
        frame = frame.tb_next
    for found in candidates:
        if isinstance(found, Request) and found.path is not None:
            return unquote(found.path)
    return None


def answer_body(path: str | None, status: int, code: str, message: str) -> tuple[dict, tuple[tuple[str, str], ...]]:
    """(error body, extra headers) of the answer on ``path`` (None: unknown). On the registry's routes the OCI
    body (spec section 9), with the registry's API version header under /v2/: a 4xx is the plain OciError
    (UNSUPPORTED, as for a malformed query parameter: the HTTP request is at fault, not a name, so not the
    NAME_INVALID that to_oci_error gives an SWR 400), a 403 DENIED, a 5xx what to_oci_error gives (UNKNOWN);
    elsewhere the SWR error body (spec section 1)."""
    from swr.errors import SwrError  # noqa: PLC0415 (see error_answer)
    from swr.middleware import is_registry_path, is_registry_route  # noqa: PLC0415 (see error_answer)

    error = SwrError(message, status_code=status, error_code=code)
    if path is None or not is_registry_route(path):
        return error.body, ()
    from swr.api.registry.errors import to_oci_error  # noqa: PLC0415 (see error_answer)
    from swr.api.registry.views import API_VERSION_HEADER  # noqa: PLC0415 (see error_answer)
    from swr.distribution.errors import Denied, OciError  # noqa: PLC0415 (see error_answer)

    if status >= 500:
        oci = to_oci_error(error)
    elif status == 403:
        oci = Denied(message)
    else:
        oci = OciError(message, status_code=status)
    headers = (API_VERSION_HEADER,) if is_registry_path(path) else ()  # the token view sends none
    return oci.body, headers


def render(status: int, reason: str, body: dict, request_id: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The whole HTTP/1.1 answer: status line, headers (``headers`` after the usual ones) and the error body."""
    content = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(content)}",
        f"X-Request-Id: {request_id}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n" + content


class SwrErrorsMixin:
    """Replaces ``Worker.handle_error`` (gunicorn's extension point): the same statuses and log lines, the
    error body of the path instead of HTML (the OCI body on the registry's routes, else the SWR body)."""

    def handle_error(self, req, client, addr, exc):
        request_start = datetime.now()
        addr = addr or ("", -1)  # unix socket
        request_id = uuid.uuid4().hex
        found = classify(exc)
        if found is not None:
            status, reason = found
            self.log.warning(f"Invalid request from ip={addr[0]}: {exc} (request id {request_id})")
            if req is None and isinstance(exc, (http_errors.InvalidHeader, http_errors.InvalidHeaderName)):
                req = getattr(exc, "req", None)  # for the access log, as gunicorn does
        else:
            status, reason = 500, "Internal Server Error"
            if hasattr(req, "uri") and hasattr(req, "method"):
                self.log.exception("Error handling request %s %s (request id %s)", req.method, req.uri, request_id)
            elif hasattr(req, "uri"):
                self.log.exception("Error handling request %s (request id %s)", req.uri, request_id)
            else:
                self.log.exception("Error handling request (no URI read) (request id %s)", request_id)
        try:
            code, message = error_answer(status, exc)
            body, headers = answer_body(refused_path(req, exc), status, code, message)
            answer = render(status, reason, body, request_id, headers)
        except Exception:
            self.log.exception("Failed to build the error body (request id %s)", request_id)
            return
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{status} {reason}"
            resp.response_length = len(answer)
            self.log.access(resp, req, environ, datetime.now() - request_start)
        try:
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")


class GeventWorker(SwrErrorsMixin, ggevent.GeventWorker):
    """gunicorn's gevent worker (GUNICORN_WORKER_CLASS=gevent, the default)."""


class SyncWorker(SwrErrorsMixin, sync.SyncWorker):
    """gunicorn's sync worker (GUNICORN_WORKER_CLASS=sync)."""


class ThreadWorker(SwrErrorsMixin, gthread.ThreadWorker):
    """gunicorn's gthread worker (GUNICORN_WORKER_CLASS=sync with GUNICORN_THREADS > 1, or gthread)."""
