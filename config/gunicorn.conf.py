"""gunicorn settings for scheduler-service: several worker processes on one port.

    pip install 'scheduler-service[gunicorn,postgres]'
    export SCHEDULER_COORDINATION=postgresql://scheduler:...@db/scheduler   # required, see below
    gunicorn -c config/gunicorn.conf.py 'scheduler_service:create_app()'

Every worker is a full replica of the service: it builds its own app (settings, scheduler,
leader election) and serves the whole API. With more than one worker, set
SCHEDULER_COORDINATION (and shared SCHEDULER_JOBSTORE_URL / SCHEDULER_DATABASE_URL): the
workers then elect one leader that fires the jobs. Without it every worker fires every job;
the shared run history still claims each fire once, but the workers race for every fire.

The knobs below read GUNICORN_* variables (not SCHEDULER_*: the service refuses SCHEDULER_*
names it does not know). Command-line options still override this file.
"""

from __future__ import annotations

import logging
import os

# The app: `gunicorn -c config/gunicorn.conf.py` alone serves it; an app given on the
# command line wins.
wsgi_app = "scheduler_service:create_app()"

# -- where and how many -------------------------------------------------------------------
# host:port, or unix:/path; several addresses separated by spaces.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000").split()

# Worker processes: each one is a replica with its own scheduler and database connections.
# WEB_CONCURRENCY is the variable gunicorn itself (and many platforms) use.
workers = int(os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or 2)

# Threads per worker: GET /scheduler/events is a Server-Sent Events stream that holds one
# request thread for as long as the client stays connected (a worker allows 4 streams), so
# the workers must be threaded; the synchronous worker would be blocked by one stream.
# Raise the threads if clients keep several streams open on one worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))

# NO preload_app. The scheduler, its executors' thread pools and the leader election run in
# threads, and threads do not survive fork(): an app built in the master and forked into the
# workers would have a scheduler that never fires, and every worker would share one replica
# id and one set of database and coordination connections. Each worker builds its own app
# after the fork (it runs the database migrations under a lock, so workers may start at once).
preload_app = False

# -- timeouts -------------------------------------------------------------------------------
# Seconds a worker may stay silent before the master kills and replaces it. A gthread worker
# checks in from its main loop even while streams are open, so this only bites a hung
# worker or a slow start: a worker builds its app (migrations, job-store checks) within this
# time, so keep it above SCHEDULER_STORE_WAIT.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))

# Seconds a stopping worker (SIGTERM, or a restart) keeps serving the requests it has
# before it is killed. Open event streams are cut off after this; keep it below your
# orchestrator's own grace period (Kubernetes: 30 s) so gunicorn, not SIGKILL, ends them.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))

# Seconds to keep an idle client connection open (above 2 behind a load balancer that
# reuses connections).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))

# Do not recycle workers (max_requests): every restart of the leader's worker hands the
# leadership over to another worker.
max_requests = 0

# -- logging ------------------------------------------------------------------------------------
# Errors and gunicorn's messages go to stderr. The access log is off unless
# GUNICORN_ACCESS_LOG names a file, or "-" for stdout.
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
proc_name = "scheduler-service"


def post_fork(server, worker):
    """Send the service's own log lines (leadership changes, store errors, declared jobs)
    to stderr like `scheduler-service run` does; gunicorn configures only its own loggers."""
    logging.basicConfig(
        level=loglevel.upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )


def post_worker_init(worker):
    """Freeze what the worker built at start-up out of the cyclic garbage collector, as
    `scheduler-service run` does (scheduler_service/tuning.py)."""
    from scheduler_service.tuning import freeze_startup_objects

    freeze_startup_objects()


def worker_exit(server, worker):
    """Stop this worker's scheduler when the worker stops (SIGTERM, a restart, the master
    stopping): it stops firing and gives up the leadership at once, so another worker takes
    over now rather than after the lease.

    Without this, a stopping worker keeps its scheduler and its leadership until the process
    is gone, and the process lives on while Python waits for the jobs still running: the
    leader would go on claiming fires it can no longer run (lost fires). Running jobs still
    finish; the next leader fires what comes due meanwhile.
    """
    app = getattr(worker, "wsgi", None)  # the app create_app() built in this worker
    extension = getattr(app, "extensions", {}).get("scheduler_service")
    if extension is not None and extension.running:
        extension.shutdown(wait=False)
