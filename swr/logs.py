"""Logging: the id of the request being served on every record, JSON lines, and the access log.

Every log record carries ``request_id`` (the id also sent back in
``X-Request-Id`` and stored in audit records). :class:`JsonFormatter` writes
one JSON object per line, stack traces included, for log collectors.
"""

import contextvars
import json
import logging
import time
from datetime import UTC, datetime

current_request_id = contextvars.ContextVar("request_id", default="-")
access_logger = logging.getLogger("swr.access")

_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class RequestIdLogFilter(logging.Filter):
    """Put the id of the request being served on every log record (``%(request_id)s``).

    The id comes from the record's ``request`` when it has one: Django writes its
    ``django.request`` lines (a 5xx answer) after the middleware has returned, when
    the context variable no longer holds the request's id. Other records take the
    id of the request being served, ``-`` outside a request.
    """

    def filter(self, record):
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or current_request_id.get()
        return True


class ClientFaultFilter(logging.Filter):
    """One WARNING line without a stack trace, for a logger whose records are the client's fault.

    Django logs each SuspiciousOperation (an unknown Host header, too many form
    fields ...) as an ERROR with a stack trace, to ``django.security.<class name>``;
    the client gets a 400. Attached to those loggers (settings.LOGGING), this turns
    each such record into a warning that names the problem, before any handler sees it.
    """

    def filter(self, record):
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info = record.exc_text = record.stack_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, extra fields, stack trace."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _printable(text: str) -> str:
    """``text`` with control characters escaped: a path of ``x%0aFAKE`` must not start a log line of its own."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_IDENTITY_ATTRIBUTE = "_access_log_identity"


def identify(request, username: str, tenant: str = "") -> None:
    """Name the caller of ``request`` in its access log line when the request does not load its user: a
    registry bearer token carries the names (swr/api/registry/tokens.py). ``request.user``, once set, wins."""
    setattr(request, _IDENTITY_ATTRIBUTE, (username, tenant or None))


def _field(value: str) -> str:
    """A name as a ``key=value`` field of a plain line: quoted (JSON) when a space, a quote or '=' would make the
    line read otherwise (a tenant named ``acme user=root``), control characters escaped."""
    if value.isprintable() and not any(c.isspace() or c in '="' for c in value):
        return value
    return json.dumps(value)


class AccessLogMiddleware:
    """One access log line per request: method, path, status, duration, user, tenant, request id. The user and
    tenant are those of ``request.user`` when it is authenticated, else those :func:`identify` gave, else null.
    The message (all the plain format shows) is ``<method> <path> <status>``, then ``user=<name>`` and
    ``tenant=<name>`` when known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        user = getattr(request, "user", None)
        authenticated = bool(user is not None and getattr(user, "is_authenticated", False))
        if authenticated:
            username, tenant = user.username, user.tenant.name if getattr(user, "tenant", None) else None
        else:
            username, tenant = getattr(request, _IDENTITY_ATTRIBUTE, (None, None))
        message, args = "%s %s %s", [request.method, _printable(request.path), response.status_code]
        for name, value in (("user", username), ("tenant", tenant)):
            if value:
                message += f" {name}=%s"
                args.append(_field(value))
        access_logger.info(
            message,
            *args,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user": username,
                "tenant": tenant,
            },
        )
        return response
