"""Public listing: how many `GET /v1/events?kind=…` the events service answers per second with
`listing_events` published events (spread over the seven kinds and the coming two months).

Figure: requests/s answered 200, closed loop (`listing_clients` threads back to back for
`listing_seconds`), the first page of one kind (limit 20).
Baseline: a bare Flask endpoint returning the same rows (the same public JSON of the same events, stored
as they were answered) from one indexed table, under the same gunicorn command line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import baseline_app
from bench.harness import Result, Run, databases, gunicorn_app, not_available, progress
from bench.load import Call, burst, for_duration
from gather_shared.db import make_engine
from gather_shared.testing import Client, event_body

KINDS = ["workshop", "support_group", "talk", "awareness_campaign", "recreational", "social", "other"]
QUERY = {"kind": "workshop", "limit": 20}
TARGET_RATIO = 0.5
TITLE = "Listing benchmark"
SEED_CLIENTS = 8


def seeding(client: Client, api_key: str, n: int) -> list[Call]:
    base = client.urls["events"]
    headers = {"Authorization": f"Bearer {api_key}"}
    now = datetime.now(UTC).replace(microsecond=0)

    def call(i: int) -> Call:
        starts = now + timedelta(days=1, minutes=17 * i)
        body = event_body(title=f"{TITLE} {i}", kind=KINDS[i % len(KINDS)], starts_at=starts.isoformat(),
                          ends_at=(starts + timedelta(hours=1)).isoformat())

        def create_and_publish(s: requests.Session) -> dict[str, Any]:
            created = s.post(f"{base}/v1/events", json=body, headers=headers, timeout=60)
            created.raise_for_status()
            published = s.post(f"{base}/v1/events/{created.json()['id']}/publish", headers=headers, timeout=60)
            published.raise_for_status()
            return published.json()

        return create_and_publish

    return [call(i) for i in range(n)]


def answered(outcome: Any) -> int:
    return sum(1 for r in outcome.results if isinstance(r, requests.Response) and r.status_code == 200)


def measure(url: str, run: Run, label: str) -> float:
    outcome = for_duration(lambda s: s.get(f"{url}/v1/events", params=QUERY, timeout=60),
                           run.sizes.listing_clients, run.sizes.listing_seconds, label)
    return answered(outcome) / outcome.seconds


def run(run: Run) -> list[Result]:
    unit, target = "req/s", f">= {TARGET_RATIO:.0%} of baseline"
    started = run.platform()
    client = Client(started)
    probe = client.call("GET", "events", "/v1/events", params=QUERY)
    if probe.status_code != 200 or "items" not in probe.json():
        return [not_available("public listing", unit, target,
                              f"GET /v1/events?kind= answers {probe.status_code}, not a listing")]

    n = run.sizes.listing_events
    progress(f"public listing: publishing {n} events")
    seeded = burst(seeding(client, client.organizer()["api_key"], n), SEED_CLIENTS, "events published")
    events = [e for e in seeded.results if isinstance(e, dict)]
    if len(events) < n:
        raise RuntimeError(f"only {len(events)} of {n} events published: {seeded.results[0]!r}")
    run.settle()  # the other services digest the `event.published` messages before we measure

    page = client.call("GET", "events", "/v1/events", params=QUERY).json()["items"]
    if not page or any(item["kind"] != QUERY["kind"] for item in page):
        raise RuntimeError(f"the listing does not filter by kind: {page[:1]!r}")
    figure = measure(started.urls["events"], run, "listing")
    progress(f"public listing: {figure:,.0f} req/s")

    with databases(run, "baseline") as urls:
        engine = make_engine(urls["baseline"])
        baseline_app.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(baseline_app.listing.insert(), [
                {"id": uuid.UUID(e["id"]), "kind": e["kind"], "starts_at": datetime.fromisoformat(e["starts_at"]),
                 "body": {k: v for k, v in e.items() if k != "online_url"}} for e in events])
        engine.dispose()
        with gunicorn_app(run, "bench.baseline_app:listing_app()", {"BENCH_DATABASE_URL": urls["baseline"]}) as url:
            base = measure(url, run, "baseline listing")
    progress(f"public listing baseline: {base:,.0f} req/s")
    return [Result("public listing", figure, unit, base, target=target, met=figure >= TARGET_RATIO * base,
                   details={"events": n, "clients": run.sizes.listing_clients, "query": QUERY,
                            "items_per_page": len(page)})]
