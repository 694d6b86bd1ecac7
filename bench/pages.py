"""Attendee pages: how many listing pages (`GET /?kind=workshop`: the first 20 of `listing_events` listed
events) and event pages (`GET /events/{id}`, the registration form included) the pages service answers per
second.

Figure: pages/s answered 200, closed loop (`listing_clients` connections back to back for `listing_seconds`,
from wrk where the machine has it).
Baseline: a bare Flask page rendering the same rows from the same database (the pages service's own
tables, one query, one plain template), under the same gunicorn command line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench.harness import Result, Run, gunicorn_app, progress
from bench.load import get_rate
from gather_pages.handlers import copy_event
from gather_pages.store import Event, Seats
from gather_shared.db import make_engine, session_factory
from gather_shared.testing import event_snapshot

KINDS = ["workshop", "support_group", "talk", "awareness_campaign", "recreational", "social", "other"]
QUERY = {"kind": "workshop"}
PAGE_SIZE = 20
TARGET_RATIO = 0.5
TITLE = "Pages benchmark"


def seed(database_url: str, n: int) -> list[uuid.UUID]:
    """`n` listed events with their seat counts, written through the pages' own copy function (what their
    consumer does with each event.published.v1), spread over the seven kinds and the coming weeks."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        for i in range(n):
            starts = now + timedelta(days=1, minutes=17 * i)
            snap = event_snapshot(
                starts, title=f"{TITLE} {i}", kind=KINDS[i % len(KINDS)], description="Come as you are. " * 20
            )
            event = Event(id=snap["id"])
            copy_event(event, snap, now)
            session.add(event)
            session.add(
                Seats(event_id=snap["id"], capacity=10, confirmed=i % 11, waitlisted=0, waitlist_enabled=True, seq=1)
            )
            ids.append(snap["id"])
    engine.dispose()
    return ids


def measure(url: str, params: dict[str, Any], run: Run, label: str) -> float:
    return get_rate(url, params, run.sizes.listing_clients, run.sizes.listing_seconds, label)


def run(run: Run) -> list[Result]:
    unit, target = "pages/s", f">= {TARGET_RATIO:.0%} of baseline"
    started = run.platform()
    database_url = (started.database_urls or {})["pages"]
    n = run.sizes.listing_events
    progress(f"attendee pages: seeding {n} listed events")
    ids = seed(database_url, n)
    pages = started.urls["pages"]
    listing = requests.get(pages, params=QUERY, timeout=30)
    shown = listing.text.count('class="event-list__item"')
    expected = min(PAGE_SIZE, sum(1 for i in range(n) if KINDS[i % len(KINDS)] == QUERY["kind"]))
    if listing.status_code != 200 or shown < expected:
        raise RuntimeError(f"the listing answers {listing.status_code} with {shown} events, not {expected}")
    event_url = f"{pages}/events/{ids[0]}"
    if requests.get(event_url, timeout=30).status_code != 200:
        raise RuntimeError("the event page does not answer")

    figures = {
        "listing": measure(pages, QUERY, run, "attendee listing"),
        "event": measure(event_url, {}, run, "attendee event page"),
    }
    with gunicorn_app(run, "bench.baseline_app:pages_app()", {"BENCH_DATABASE_URL": database_url}) as (url, _):
        bases = {
            "listing": measure(url, QUERY, run, "baseline listing page"),
            "event": measure(f"{url}/events/{ids[0]}", {}, run, "baseline event page"),
        }
    details = {"events": n, "clients": run.sizes.listing_clients, "query": QUERY}
    results = []
    for name, title in (("listing", "attendee listing page"), ("event", "attendee event page")):
        progress(f"{title}: {figures[name]:,.0f} pages/s, baseline {bases[name]:,.0f}")
        results.append(
            Result(
                title,
                figures[name],
                unit,
                bases[name],
                target=target,
                met=figures[name] >= TARGET_RATIO * bases[name],
                details=details,
            )
        )
    return results
