"""Prometheus metrics of every Gather process (prometheus-client): what they count, and where each process
shows them.

- Every process serves them on `GATHER_METRICS_PORT` when it is set (off by default, as on `make run`), a
  port of their own, never the port people reach: a web service's gunicorn master serves the counts of all
  its workers there (they count in files of a directory the master shares with them: prometheus-client's
  multiprocess mode, set up in deploy/gunicorn.conf.py); a worker (relay, consumer, sender, scheduler)
  serves its own.

No label ever holds an id, a contact or a token: routes are labelled by their rule
(`/v1/signups/<uuid:signup_id>`), messages by their type. docs/operations.md lists the metrics, the
alert rules in deploy/monitoring/ read them."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

#: Seconds a request took to answer, by route rule, method and status.
REQUEST_SECONDS = Histogram(
    "gather_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
#: Messages by type and what happened to them: published (relay, broker confirmed), handled, duplicate
#: (the inbox had it already), retried, dead_lettered (consumer).
MESSAGES = Counter("gather_messages_total", "Messages through the bus, by type and outcome", ["type", "outcome"])
#: Age of the oldest outbox row waiting for the relay, as the relay saw it last; 0 when none waits.
OUTBOX_OLDEST_SECONDS = Gauge("gather_outbox_oldest_seconds", "Age of the oldest unpublished outbox row")
#: Messages the broker holds for this consumer's queue, as it said when the consumer last looked.
CONSUMER_LAG = Gauge("gather_consumer_queue_messages", "Messages waiting in this consumer's queue", ["queue"])
#: Notifications by kind, channel and the status the sender gave them.
NOTIFICATIONS = Counter(
    "gather_notifications_total", "Notifications the sender finished, by outcome", ["kind", "channel", "status"]
)
#: How long after its planned time a reminder went out.
REMINDER_LATENESS_SECONDS = Histogram(
    "gather_reminder_lateness_seconds",
    "Seconds between a reminder's planned time and its sending",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600),
)

#: The methods a request is counted under by name (RFC 9110's); any other counts as OTHER.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})

#: The setting that makes a worker serve its metrics.
PORT_SETTING = "GATHER_METRICS_PORT"


def instrument(app: Flask) -> None:
    """Time every request of `app` into REQUEST_SECONDS."""

    @app.before_request
    def _start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            # Anyone may send any method: each new label would be a new series (a file of its own under
            # gunicorn's multiprocess directory), so a method HTTP does not define counts as OTHER.
            method = request.method if request.method in HTTP_METHODS else "OTHER"
            REQUEST_SECONDS.labels(route, method, str(response.status_code)).observe(time.perf_counter() - started)
        return response


def serve_for_gunicorn() -> None:
    """In a gunicorn master: serve the counts of all its workers on GATHER_METRICS_PORT, if that is set."""
    port = os.environ.get(PORT_SETTING)
    if port:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(int(port), registry=registry)


def serve_for_worker() -> None:
    """Serve this worker's metrics on GATHER_METRICS_PORT, in a thread of its own, if that is set."""
    port = os.environ.get(PORT_SETTING)
    if port:
        start_http_server(int(port))
