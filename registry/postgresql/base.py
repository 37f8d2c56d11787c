"""Django's PostgreSQL backend, with two changes on every request's path.

The health check. With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` on a
reused connection before the first query of each request: one more round trip
to the database on every request. Between requests a connection is idle, and
the server sends nothing on an idle connection unless it is going away: a
shutdown, a restart or a terminated backend sends its error and closes the
socket, which then has something to read. So a connection that the driver has
not seen fail and whose socket has nothing to read needs no question; any
other one gets Django's ``SELECT 1`` (and is replaced if that fails), as before.

Timestamps. Django reads ``timestamptz`` columns with its own loader, a
subclass of psycopg's pure-Python one, only to set the time zone of the
result; psycopg's compiled loader (from psycopg-binary) cannot be subclassed.
Here the same result comes from psycopg's own loader, compiled where it is,
with the same time zone set afterwards: a page of the listing reads hundreds.
"""

import select
from functools import lru_cache

from django.db.backends.postgresql import base
from psycopg import adapt, adapters, pq

_TIMESTAMPTZ = adapters.types["timestamptz"].oid

# A transaction the test framework (or an outer atomic block) keeps open is fine; a failed one is not.
_HEALTHY = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


def _timestamptz_loader(timezone):
    """A loader of timestamptz text that answers what Django's answers: psycopg's value, in ``timezone``."""
    parse = adapters.get_loader(_TIMESTAMPTZ, pq.Format.TEXT)  # psycopg's own, compiled where it is

    class TimestamptzLoader(adapt.Loader):
        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._parse = parse(oid, context).load

        def load(self, data):
            return self._parse(data).replace(tzinfo=timezone)

    TimestamptzLoader.timezone = timezone  # what Django's create_cursor() compares with its own
    return TimestamptzLoader


@lru_cache
def _adapters(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    """Django's adapters for a connection, with the timestamptz loader above in the same time zone."""
    context = adapt.AdaptersMap(template)
    timezone = template.get_loader(_TIMESTAMPTZ, pq.Format.TEXT).timezone
    context.register_loader(_TIMESTAMPTZ, _timestamptz_loader(timezone))
    return context


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if "context" in params:
            params["context"] = _adapters(params["context"])
        return params

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and self._quiet()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet(self) -> bool:
        """Open, not in a failed transaction, and nothing from the server waiting on the socket."""
        connection = self.connection
        if connection.closed or connection.broken or connection.info.transaction_status not in _HEALTHY:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
