"""Django's PostgreSQL backend, whose connection pool finds a connection the server closed without a round trip.

Used for PostgreSQL when DJANGO_DB_POOL_SIZE gives each process a pool (registry/settings.py; gunicorn's gevent
workers). Django's pool checks every connection it hands out with an empty query (CONN_HEALTH_CHECKS): a round
trip to the server on every request that reads the database, three on a layer's push (docs/performance.md). A
connection the server ended (a restart, a terminated backend, an idle timeout) has been told so: the server sent
its FATAL error and closed the socket, which is then readable while the connection waits for nothing. Such a
connection is closed and given back, and the pool opens another in its place; the request takes the next one.
This subclass of Django's own backend is the documented way to change a backend ("Subclassing the built-in
database backends", Django's databases reference); everything else is Django's.

What it does not find: a server that vanished without closing (its host lost power, a network cut). A query
then fails as it would after any check, with the OperationalError that the API answers 503 (swr.api.errors).
What it replaces needlessly: a live connection holding a notification of LISTEN, which nothing here uses.
"""

import select

from django.db.backends.postgresql import base
from gevent.monkey import get_original

# The standard library's poll even where gevent's workers patched the module (gevent's documented get_original):
# a poll that waits for nothing needs no event loop. gevent's stand-in arms a watcher and runs its hub for it, which
# was about 4% of a worker's busy time during a 200-layer push, more than the poll itself.
_poll = get_original("select", "poll")


def closed_by_server(connection) -> bool:
    """Whether the idle psycopg ``connection`` is closed, broken, or has bytes waiting that nobody asked for
    (the server's goodbye): a zero-timeout poll of its socket (poll, not select: any descriptor number), no
    round trip."""
    if connection.closed or connection.broken:
        return True
    poller = _poll()
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        pool = self.pool  # the pool it came from (the property would make a new one if that one was closed)
        if pool is None:
            return connection
        while True:
            try:
                if not closed_by_server(connection):
                    return connection
                connection.close()
            except BaseException:  # a kill or a timeout of gevent's (at a close): the connection goes back
                pool.putconn(connection)
                raise
            pool.putconn(connection)  # closed: the pool drops it and opens another
            connection = super().get_new_connection(conn_params)
