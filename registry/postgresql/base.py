"""Django's PostgreSQL backend, with a health check that costs no round trip when there is nothing to check.

With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` on a reused connection before
the first query of each request: one more round trip to the database on every
request. Between requests a connection is idle, and the server sends nothing
on an idle connection unless it is going away: a shutdown, a restart or a
terminated backend sends its error and closes the socket, which then has
something to read. So a connection that the driver has not seen fail and
whose socket has nothing to read needs no question; any other one gets
Django's ``SELECT 1`` (and is replaced if that fails), as before.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq

# A transaction the test framework (or an outer atomic block) keeps open is fine; a failed one is not.
_HEALTHY = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


class DatabaseWrapper(base.DatabaseWrapper):
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
