"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py registry.wsgi:application` (or `make serve`).

Sized to the machine: (cores + 1) sync worker processes, one request at a
time each. On the 2-core benchmark machine, where PostgreSQL shares the
cores, 3 workers created repositories 7-13% faster than 5 at concurrency
1, 8 and 32, with the same or lower p99: the extra workers only contend
for the CPU with the database. On a host that runs the application alone,
with the database elsewhere, raise GUNICORN_WORKERS (2 x cores + 1 is the
usual figure). Sync workers measured against one gthread thread per worker:
the same create throughput at concurrency 8, and a p99 latency about a
third lower at concurrency 8 and half at 32, because a new connection goes
to whichever worker is free instead of staying with the one that took it
(keep-alive). Sequential calls of one client pay a TCP connect each (a
proxy in front keeps its client connections alive). Threads help less: 4
threads per worker doubled the p99 (they contend for the GIL);
GUNICORN_THREADS > 1 switches to the gthread worker. Every value can be
overridden with the environment variable named beside it. As with any
gunicorn setup, a slow client holds a worker while it sends: in front of
untrusted networks, put a buffering reverse proxy (nginx, a load balancer).
"""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A request that takes longer than this is killed; the database statement timeout is shorter.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Workers are recycled now and then, so that a slow leak cannot grow forever.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
# The application writes one JSON access line per request (swr.access); gunicorn's own would repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Load the application once in the master, so that workers start fast and share memory.
preload_app = True


def pre_fork(server, worker):
    """Before each worker is forked: move what the master loaded out of the garbage collector's sight.

    The application's modules, URLs and settings live as long as the process; with
    them frozen, the collections a worker runs while it serves requests only walk
    what requests create, and the shared pages are not copied by the collector.
    """
    gc.freeze()
