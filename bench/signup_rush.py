"""Signup rush: many attendees register for ONE event (capacity 50, waitlist on) at the same moment.

Figure: successful registrations per second, from the release of every client to the last answer;
and how many were confirmed (must be exactly 50, whatever the concurrency).
Baseline: the same requests against a bare Flask + SQLAlchemy endpoint doing one INSERT, under the
same gunicorn command line and worker count. Also reports each process's memory, idle and after."""

from __future__ import annotations

from collections import Counter

import requests

from bench import baseline_app
from bench.harness import Result, Run, databases, gunicorn_app, open_event, progress, rss_mb
from bench.load import Call, Outcome, burst
from gather_shared.db import make_engine
from gather_shared.testing import Client

CAPACITY = 50
TARGET_RATIO = 0.6


def registrations(base_url: str, event_id: str, n: int) -> list[Call]:
    def call(i: int) -> Call:
        body = {"display_name": f"Rusher {i}", "email": f"rush-{i}@example.org", "channels": ["email"]}
        return lambda s: s.post(f"{base_url}/v1/events/{event_id}/signups", json=body, timeout=120)

    return [call(i) for i in range(n)]


def statuses(outcome: Outcome) -> dict[str, int]:
    """How the answers came back: by registration status for a 201, else by HTTP status or error."""

    def status(r: requests.Response | Exception) -> str:
        if not isinstance(r, requests.Response):
            return type(r).__name__
        return r.json().get("status", "?") if r.status_code == 201 else f"http {r.status_code}"

    return dict(Counter(status(r) for r in outcome.results))


def succeeded(outcome: Outcome) -> int:
    return sum(1 for r in outcome.results if isinstance(r, requests.Response) and r.status_code == 201)


def baseline(run: Run, n: int) -> Outcome:
    with databases(run, "baseline") as urls:
        engine = make_engine(urls["baseline"])
        baseline_app.metadata.create_all(engine)
        engine.dispose()
        with gunicorn_app(run, "bench.baseline_app:insert_app()", {"BENCH_DATABASE_URL": urls["baseline"]}) as url:
            progress(f"signup rush baseline: {n} INSERTs from {run.sizes.rush_clients} clients")
            return burst(
                registrations(url, "00000000-0000-4000-8000-000000000000", n), run.sizes.rush_clients, "baseline"
            )


def confirmed_per_availability(client: Client, event_id: str) -> int | None:
    response = client.call("GET", "signup", f"/v1/events/{event_id}/availability")
    return response.json().get("confirmed") if response.status_code == 200 else None


def run(run: Run) -> list[Result]:
    n = run.sizes.rush_registrations
    started = run.platform()
    idle = rss_mb(started)
    client = Client(started)
    event = open_event(client, title="Signup rush", capacity=CAPACITY, waitlist_enabled=True)
    base = baseline(run, n)
    base_rate = succeeded(base) / base.seconds
    progress(f"signup rush baseline: {base_rate:,.0f}/s, {statuses(base)}")
    progress(f"signup rush: {n} registrations for one event from {run.sizes.rush_clients} clients")
    outcome = burst(registrations(started.urls["signup"], event["id"], n), run.sizes.rush_clients, "rush")
    after = rss_mb(started)
    answers = statuses(outcome)
    confirmed = answers.get("confirmed", 0)
    per_availability = confirmed_per_availability(client, event["id"])
    rate = succeeded(outcome) / outcome.seconds
    progress(f"signup rush: {rate:,.0f}/s, {answers}, availability says confirmed={per_availability}")
    exactly = confirmed == CAPACITY and per_availability in (None, CAPACITY)
    rush = Result(
        "signup rush",
        rate,
        "reg/s",
        base_rate,
        target=f">= {TARGET_RATIO:.0%} of baseline; {CAPACITY} confirmed",
        met=rate >= TARGET_RATIO * base_rate and exactly,
        details={
            "registrations": n,
            "clients": run.sizes.rush_clients,
            "answers": answers,
            "baseline_answers": statuses(base),
            "confirmed": confirmed,
            "confirmed_per_availability": per_availability,
            "seconds": outcome.seconds,
            "baseline_seconds": base.seconds,
        },
    )
    return [rush, *memory(idle, after)]


def memory(idle: dict[str, float], after: dict[str, float]) -> list[Result]:
    return [
        Result(
            f"memory: {name}",
            after[name],
            "MB",
            target=f"reported (idle {idle[name]:.0f} MB)",
            details={"idle_mb": idle[name], "after_rush_mb": after[name]},
        )
        for name in after
    ]
