"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py registry.wsgi:application` (or `make serve`).

Worker model: gevent. Each of the (cores + 1) worker processes serves many
connections at once, one greenlet each, and runs another greenlet whenever
one waits: for a client's bytes, or for PostgreSQL (psycopg 3 cooperates
with gevent by itself). A client that sends slowly therefore holds only its
own greenlet. With one request at a time per process (the sync workers used
before), ten connections that announced a body and sent one byte stopped
/healthz for over 20 seconds; tests/test_slow_clients.py keeps twenty slow
or idle clients on one worker and shows /healthz and creates answering
within 2 seconds all the while. Weighed against it: uvicorn (ASGI) reads
each body whole before the view, which the registry's blob uploads cannot
afford, and runs the synchronous views in one thread per worker; a buffering
proxy (nginx) would be one more program to install, configure and start
wherever the service runs.

What one slow client can hold:
- the request line and headers must arrive within GUNICORN_KEEPALIVE seconds
  (5): the gevent worker puts that time limit on reading every request head,
  the first one included, and then closes the connection;
- the body (at most 1 MiB) is read whole before the request takes a database
  connection (swr.middleware.ReadBodyFirstMiddleware), so a slow body holds a
  greenlet and a socket and nothing that other requests need; a body has no
  time limit;
- each worker serves at most GUNICORN_WORKER_CONNECTIONS connections (500,
  below the usual limit of 1024 open files); further ones wait in the listen
  backlog. Where a single client may open thousands of connections, limit
  connections per client address in front of the service (a load balancer or
  a proxy).

Database connections. The requests of one worker run interleaved in one
thread, so a connection cannot belong to the thread between requests as with
sync workers: a request takes one from its worker's pool when it first needs
one and gives it back at its end (DJANGO_DB_POOL_SIZE, set to 10 here unless
given; registry/settings.py; on SQLite, one connection per request). A
request that finds the pool busy waits up to DJANGO_DB_CONNECT_TIMEOUT, then
answers 503. Ten, because a request that checks a password holds its
connection while the hash keeps the worker busy (about 0.3 s): with 4, a
burst of 20 logins on 4 workers left requests waiting past the timeout.
A password hash holds its worker's loop while it runs (~0.3 s), so a burst
of password logins larger than the workers can hash within the connect
timeout still answers some of them 503 "busy"; moving the hash off the loop
is the open fix.
PostgreSQL must allow workers x pool size connections, plus
those of management commands (max_connections is 100 by default). On
SQLite, a request that waits for the write lock (held by another process)
stops its worker for that wait: the lock is waited for inside SQLite, not
in gevent. PostgreSQL is the production database.

Loading. gevent must patch the standard library before psycopg, Django and
the application are imported: psycopg chooses how it waits when it is
imported (a wait outside gevent would stop every request of the worker), and
Django's connections would belong to the master's thread. So with gevent
each worker loads the application after it is forked (preload_app off, as
gunicorn's documentation advises for gevent); tests/test_slow_clients.py
fails when it is on. With sync or gthread workers the master loads it once
and the workers share it.

Speed. Creates at concurrency 8 (wrk, kept-alive connections, PostgreSQL),
gevent against sync workers, 27 pairs of 5-second runs alternated on the
2-core machine while other work loaded it (load average 5-8; single runs
varied by +-40%): throughput gevent / sync median 0.90; application CPU per
create +16% (median of 9 pairs; the pool's checkout and its check query are
part of it); p99 latency about 1.5 times higher, because a kept-alive
connection stays with the worker that accepted it, so the load spreads less
evenly than over sync workers, which close every connection. At concurrency
1 the two were even. `make bench` on a quiet machine gives the real figures.

Sizing (measured with sync workers): on the 2-core benchmark machine, where
PostgreSQL shares the cores, 3 workers created repositories 7-13% faster
than 5, with the same or lower p99: extra workers only contend for the CPU
with the database. On a host that runs the application alone, with the
database elsewhere, raise GUNICORN_WORKERS (2 x cores + 1 is the usual
figure). GUNICORN_WORKER_CLASS=sync brings back one request per process
(GUNICORN_THREADS > 1 then switches to gthread; both as the project's
subclasses, see below); use it only behind a
buffering proxy. Every value can be overridden with the environment variable
named beside it.

Request head limits. The application answers an over-long request line
(414) and over-large headers (431) with the SWR error body, on the registry's
routes with the OCI body, code UNSUPPORTED
(swr.middleware.RequestHeadLimitMiddleware: request line 4 KiB, one header
8 KiB, 100 headers). gunicorn's own limits below are the outer guard, set
above the application's so that it answers first; a request beyond them
never reaches the application: gunicorn answers it itself (414 or 431), logs
a warning and closes the connection.

Requests gunicorn refuses. A request that gunicorn's HTTP parser refuses
(beyond the limits above, or malformed: a control character in a header, a
bad Content-Length, a folded header line, an unknown Transfer-Encoding, a bad
chunk, HTTP/2.0 on the request line...) never reaches the application either.
The workers named below are gunicorn's own with one change
(registry/gunicorn_workers.py): that answer is JSON, with an X-Request-Id that
the warning line names, not gunicorn's HTML page: on the registry's routes
(/v2/ and /v2/<name>/..., every /v2/ path but /v2/manage/...; /service/token)
the OCI error body of spec section 9 (``{"errors": [{"code", "message"}]}``,
with code UNSUPPORTED for 400/414/417/431, as the registry gives a malformed
query parameter, and UNKNOWN for 501) and, under /v2/, the
Docker-Distribution-API-Version header; elsewhere the SWR error body. When
gunicorn refused the request line before reading its path (one beyond the
limit, a lower-case method, a byte >= 0x80 in the target) the path is
unknown and the answer is the SWR body.
"""

import ctypes
import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# gunicorn's workers with one change (registry/gunicorn_workers.py): the requests gunicorn refuses itself get the
# error body of their path (OCI on the registry's routes, else SWR), not an HTML page. gunicorn's short names map
# to them; a full class path is used as given.
_WORKERS = {
    "gevent": "registry.gunicorn_workers.GeventWorker",
    "sync": "registry.gunicorn_workers.ThreadWorker" if threads > 1 else "registry.gunicorn_workers.SyncWorker",
    "gthread": "registry.gunicorn_workers.ThreadWorker",
}
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_class = _WORKERS.get(worker_class, worker_class)
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "500"))
_gevent = worker_class in (_WORKERS["gevent"], "gunicorn.workers.ggevent.GeventWorker")
if _gevent:
    # Requests of a worker share its thread: they take database connections from a pool (registry/settings.py).
    os.environ.setdefault("DJANGO_DB_POOL_SIZE", "10")
# sync workers: a request that takes longer than this is killed. gevent workers: a worker whose
# loop is stuck this long (a request busy on the CPU) is killed. The database statement timeout is shorter.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Idle time of a kept-alive connection, and (gevent) the time limit on reading each request head.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Workers are recycled now and then, so that a slow leak cannot grow forever.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
# The outer guard of the request head (the application's limits are lower; see above). 8190 is the
# largest request line gunicorn accepts as a limit. A head may take up to fields x field size bytes
# (2 MiB) of memory while it is read.
limit_request_line = 8190
limit_request_field_size = 16 * 1024
limit_request_fields = 128
# gunicorn's control socket (`gunicornc`) only where asked for: by default every gunicorn of a user would
# share one path ($HOME/.gunicorn/gunicorn.ctl), and stopping one removes the socket of another.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
# The application writes one JSON access line per request (swr.access); gunicorn's own would repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# sync and gthread: load the application once in the master, so that workers start fast and share memory.
# gevent: each worker loads it after gevent has patched the standard library.
preload_app = not _gevent


def pre_fork(server, worker):
    """Before each worker is forked: move what the master loaded out of the garbage collector's sight.

    With preload_app, the application's modules, URLs and settings live as long
    as the process; with them frozen, the collections a worker runs while it
    serves requests only walk what requests create, and the shared pages are not
    copied by the collector. Without it there is little to freeze.
    """
    gc.freeze()


# glibc's mallopt(3) parameters (malloc.h) and the values each worker takes; see post_fork.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD = 4 * 1024 * 1024
MALLOC_TRIM_THRESHOLD = 16 * 1024 * 1024


def post_fork(server, worker):
    """In each worker, as it starts: keep the memory of a blob's body reads in the C library's heap.

    A blob's body arrives in reads of up to 1 MiB (gunicorn's recv(), the
    registry's 256 KiB pieces: swr/api/registry/views.py). glibc's allocator
    gives a block that large a mapping of its own, or, once it has raised its
    threshold, gives the top of its heap back to the kernel soon after: either
    way each read's buffer comes as fresh pages, a page fault and a zeroed page
    per 4 KiB: about 100,000 to 116,000 page faults for 200 MiB received. Blocks
    below MALLOC_MMAP_THRESHOLD now come from the heap, and the heap keeps up to
    MALLOC_TRIM_THRESHOLD of free memory at its top for the next reads: a few
    hundred page faults (tests/test_upload_memory.py), and about 30% less of
    the server's CPU per 200 MB push (docs/performance.md, ninth round). A
    worker's peak memory during a 1 GiB push is unchanged (bench/upload_memory.py);
    up to MALLOC_TRIM_THRESHOLD of the memory a worker freed stays with it for its
    next requests (per malloc arena: a gthread worker may have one per thread).

    An operator's own setting of glibc's allocator wins: glibc's environment variables
    (MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_, as mallopt(3) names them, or a
    glibc.malloc tunable in GLIBC_TUNABLES) leave both values to glibc. On a C library
    without mallopt (musl) nothing changes.
    """
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if (
        os.environ.get("MALLOC_MMAP_THRESHOLD_")
        or os.environ.get("MALLOC_TRIM_THRESHOLD_")
        or "glibc.malloc." in tunables
    ):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on
    except AttributeError:  # one without mallopt
        return
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)


def post_worker_init(worker):
    """In each worker, once it has loaded the application: the same for what the worker loaded itself.

    gevent workers load the application after they are forked (see above), so
    this is where their modules, URLs and settings are moved out of the
    collector's sight.
    """
    gc.freeze()
