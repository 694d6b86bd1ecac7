"""Public listing: how many `GET /v1/events?kind=…` the events service answers per second with
`listing_events` published events (spread over the seven kinds and the coming two months).

Figure: requests/s answered 200, closed loop (`listing_clients` connections back to back for
`listing_seconds`, from wrk where the machine has it), the first page of one kind (limit 20).
Baseline: a bare Flask endpoint returning the same rows (the same public JSON of the same events, stored
as they were answered) from one indexed table, under the same gunicorn command line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import baseline_app
from bench.harness import Result, Run, databases, gunicorn_app, not_available, progress
from bench.load import get_rate
from gather_shared.db import make_engine, session_factory
from gather_shared.testing import Client, event_body

KINDS = ["workshop", "support_group", "talk", "awareness_campaign", "recreational", "social", "other"]
QUERY = {"kind": "workshop", "limit": 20}
TARGET_RATIO = 0.5
TITLE = "Listing benchmark"


def seed(database_url: str, organizer_id: str, n: int) -> None:
    """Insert `n` published events through the events service's own model (its write hooks run), not
    over HTTP: creating and publishing 5,000 events one call at a time would take minutes here, and
    only the listing is measured."""
    from gather_events.store import Event

    now = datetime.now(UTC).replace(microsecond=0)
    template = event_body()
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        for i in range(n):
            starts = now + timedelta(days=1, minutes=17 * i)
            fields = {k: v for k, v in template.items() if k not in ("starts_at", "ends_at")}
            session.add(
                Event(
                    **fields
                    | {
                        "title": f"{TITLE} {i}",
                        "kind": KINDS[i % len(KINDS)],
                        "starts_at": starts,
                        "ends_at": starts + timedelta(hours=1),
                    },
                    organizer_id=uuid.UUID(organizer_id),
                    status="published",
                    version=2,
                )
            )
    engine.dispose()


def every_item(client: Client, kind: str) -> list[dict[str, Any]]:
    """The whole listing of one kind, page by page, as the public sees it."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"kind": kind, "limit": 100} | ({"cursor": cursor} if cursor else {})
        page = client.call("GET", "events", "/v1/events", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def measure(url: str, run: Run, label: str) -> float:
    return get_rate(f"{url}/v1/events", QUERY, run.sizes.listing_clients, run.sizes.listing_seconds, label)


def run(run: Run) -> list[Result]:
    unit, target = "req/s", f">= {TARGET_RATIO:.0%} of baseline"
    started = run.platform()
    client = Client(started)
    probe = client.call("GET", "events", "/v1/events", params=QUERY)
    if probe.status_code != 200 or "items" not in probe.json():
        return [
            not_available(
                "public listing", unit, target, f"GET /v1/events?kind= answers {probe.status_code}, not a listing"
            )
        ]

    n = run.sizes.listing_events
    progress(f"public listing: seeding {n} published events")
    seed((started.database_urls or {})["events"], client.organizer()["id"], n)
    events = [item for kind in KINDS for item in every_item(client, kind)]  # with the other benchmarks' events
    shown = sum(1 for e in events if e["title"].startswith(TITLE))
    if shown != n:
        raise RuntimeError(f"the listing shows {shown} of the {n} events seeded")
    page = client.call("GET", "events", "/v1/events", params=QUERY).json()["items"]
    if not page or any(item["kind"] != QUERY["kind"] for item in page):
        raise RuntimeError(f"the listing does not filter by kind: {page[:1]!r}")
    figure = measure(started.urls["events"], run, "listing")
    progress(f"public listing: {figure:,.0f} req/s")

    with databases(run, "baseline") as urls:
        engine = make_engine(urls["baseline"])
        baseline_app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                baseline_app.listing.insert(),
                [
                    {
                        "id": uuid.UUID(e["id"]),
                        "kind": e["kind"],
                        "starts_at": datetime.fromisoformat(e["starts_at"]),
                        "body": e,
                    }
                    for e in events
                ],
            )
        engine.dispose()
        env = {"BENCH_DATABASE_URL": urls["baseline"]}
        with gunicorn_app(run, "bench.baseline_app:listing_app()", env) as (url, _):
            base = measure(url, run, "baseline listing")
    progress(f"public listing baseline: {base:,.0f} req/s")
    return [
        Result(
            "public listing",
            figure,
            unit,
            base,
            target=target,
            met=figure >= TARGET_RATIO * base,
            details={"events": n, "clients": run.sizes.listing_clients, "query": QUERY, "items_per_page": len(page)},
        )
    ]
