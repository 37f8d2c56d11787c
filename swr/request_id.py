"""The id of the request being served, for log lines and audit records."""

import contextvars
import logging

current_request_id = contextvars.ContextVar("request_id", default="-")


class RequestIdLogFilter(logging.Filter):
    """Put the id of the request being served on every log record (``%(request_id)s``)."""

    def filter(self, record):
        record.request_id = current_request_id.get()
        return True
