"""gunicorn settings shared by the web services.

Sync workers: measured faster than gthread on a PostgreSQL-backed endpoint (docs/benchmarks.md,
"Measurements behind the code"); ours answers gunicorn's own errors (414, a worker timed out) as
problem+json, like the apps (gather_shared.worker).
Override the count with WEB_CONCURRENCY (gunicorn reads it itself)."""

import os
import shutil
import tempfile
from typing import Any

# Metrics of every worker in one scrape (gather_shared.metrics): prometheus-client's multiprocess mode,
# set before anything imports it, in a fresh directory per master (stale files would add old counts).
_METRICS_DIR = None
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gather-metrics-")

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gather_shared.worker.ProblemWorker"
timeout = 30
graceful_timeout = 10
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
logger_class = "gather_shared.accesslog.RedactingLogger"  # no token of a link in any log line
control_socket_disable = True  # three masters on one machine would fight over one socket path


def on_starting(server: Any) -> None:
    """Refuse bad settings once, in the master, before a worker forks. Otherwise every worker refuses on its
    own and, when two fail at once, gunicorn's master prints a traceback of its own halt."""
    module = server.app.app_uri.split(":")[0].split(".")[0]
    if module.startswith("gather_"):
        from gather_shared.service import keep_files_private, settings_or_exit, settle

        keep_files_private()
        settings_or_exit(module.removeprefix("gather_"))
        settle()  # what the master imported, out of the collector's sight in it and in the workers it forks


def post_worker_init(worker: Any) -> None:
    from gather_shared.service import settle

    settle()  # the app this worker loaded, out of the collector's sight too


def when_ready(server: Any) -> None:
    from gather_shared import metrics

    metrics.serve_for_gunicorn()  # GATHER_METRICS_PORT: the workers' counts, never on the port people reach


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _METRICS_DIR is not None:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
