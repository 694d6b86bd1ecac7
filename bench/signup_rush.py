"""Signup rush: attendees register for an event (capacity 50, waitlist on) as fast as they can, each with an
address of their own, from `rush_clients` connections for `rush_seconds` (wrk where the machine has it).

Figures, each beside the same load against a bare Flask + SQLAlchemy endpoint doing one INSERT (same gunicorn
command line and worker count), measured a moment before:
- registrations/s for one event with the whole platform running (the messages each registration sets off are
  relayed, consumed and emailed on the same cores);
- the same with the relays, consumers and sender paused (SIGSTOP): the web path alone;
- the same spread over four events (each event's seat decisions are serial, different events' are not);
- the CPU the relays, consumers and sender spend per registration, through to its email accepted by the
  SMTP sink, beside the CPU the bare endpoint's gunicorn spends per INSERT.
Every rush must confirm exactly 50 per event (fewer only if fewer registered): counted in the signup
service's database and by its availability endpoint. Also reports each process's memory, idle and after."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench.harness import (
    Result,
    Run,
    cpu_seconds,
    group_cpu_seconds,
    insert_baseline,
    open_event,
    progress,
    rss_mb,
    used_by,
)
from bench.load import Posted, post_rate
from gather_shared.db import make_engine
from gather_shared.testing import Client, Platform, wait_for

CAPACITY = 50
TARGET_RATIO = 0.6  # whole platform running
PAUSED_TARGET_RATIO = 0.8  # the web path alone
CPU_TARGET_RATIO = 2.0  # downstream CPU per registration, against the bare INSERT's per request
#: The processes that work after a registration's answer: they publish, consume and send what it set off.
DOWNSTREAM = ("-relay", "-consumer", "-sender")


@dataclass(frozen=True)
class Rush:
    posted: Posted
    counts: dict[str, dict[str, int]]  # event id → status → registrations, from the signup database
    available: dict[str, int | None]  # event id → confirmed, per the availability endpoint
    downstream_cpu: float  # seconds, from the rush's start until its last email was accepted
    cpu_by_process: dict[str, float]  # seconds, every Procfile process, over the same time

    def registered(self) -> int:
        """Registrations in the database: those answered, and those still in flight when the load stopped."""
        return sum(sum(statuses.values()) for statuses in self.counts.values())

    def exact(self, clients: int) -> bool:
        """Exactly CAPACITY confirmed per event (fewer only if fewer registered), per the database and the
        endpoint alike; and every successful answer is a registration in the database."""
        return self.posted.succeeded <= self.registered() <= self.posted.succeeded + clients and all(
            statuses.get("confirmed", 0) == min(CAPACITY, sum(statuses.values()))
            and self.available[event] in (None, statuses.get("confirmed", 0))
            for event, statuses in self.counts.items()
        )


def baseline(run: Run) -> tuple[Posted, float]:
    """The bare INSERT under the same load: its rate, and its gunicorn's CPU seconds per request."""
    with insert_baseline(run) as (served, _):
        before = group_cpu_seconds(served.pid)
        path = f"/v1/events/{'0' * 8}-0000-4000-8000-{'0' * 12}/signups"
        posted = post_rate(served.url, [path], run.sizes.rush_clients, run.sizes.rush_seconds, "rush baseline")
        cpu = group_cpu_seconds(served.pid) - before
    progress(f"signup rush baseline: {posted.per_second():,.0f}/s, {1000 * cpu / posted.succeeded:.2f} ms CPU each")
    return posted, cpu / max(1, posted.succeeded)


@contextlib.contextmanager
def paused(platform: Platform, pause: bool) -> Iterator[None]:
    """With `pause`, the downstream processes stopped (SIGSTOP) meanwhile, and let go afterwards."""
    groups = [p.pid for name, p in platform.processes.items() if name.endswith(DOWNSTREAM)] if pause else []
    for pid in groups:
        os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in groups:
            os.killpg(pid, signal.SIGCONT)


def rush(run: Run, platform: Platform, client: Client, events: int, pause: bool, label: str) -> Rush:
    opened = [open_event(client, title=f"Rush {i}", capacity=CAPACITY, waitlist_enabled=True) for i in range(events)]
    run.settle()  # the probes' emails are not the rush's
    emails_before = run.smtp.arrivals.count()
    cpu_before = cpu_seconds(platform)
    with paused(platform, pause):
        paths = [f"/v1/events/{event['id']}/signups" for event in opened]
        posted = post_rate(platform.urls["signup"], paths, run.sizes.rush_clients, run.sizes.rush_seconds, label)
    run.settle()  # also lets the requests in flight when the load stopped finish
    counts = _counts(platform, opened)
    registered = sum(sum(statuses.values()) for statuses in counts.values())
    # Every registration is told (confirmed or waitlisted) by email: its downstream work ends there.
    wait_for(
        lambda: run.smtp.arrivals.count() - emails_before >= registered,
        timeout=180,
        message=f"{label}: the {registered} confirmation emails",
    )
    cpu_after = cpu_seconds(platform)
    by_process = {name: round(used, 2) for name, used in used_by(cpu_before, cpu_after).items()}
    downstream = sum(seconds for name, seconds in by_process.items() if name.endswith(DOWNSTREAM))
    result = Rush(posted, counts, _available(client, opened), downstream, by_process)
    exact = result.exact(run.sizes.rush_clients)
    progress(f"{label}: {posted.per_second():,.0f}/s, {counts}, exact: {exact}")
    return result


def _counts(platform: Platform, events: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    engine = make_engine((platform.database_urls or {})["signup"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT CAST(event_id AS TEXT), status, count(*) FROM signups GROUP BY 1, 2"),
            ).all()
    finally:
        engine.dispose()
    wanted = {event["id"] for event in events}
    counts: dict[str, dict[str, int]] = {event_id: {} for event_id in wanted}
    for event_id, status, count in rows:
        if event_id in wanted:
            counts[event_id][status] = count
    return counts


def _available(client: Client, events: list[dict[str, Any]]) -> dict[str, int | None]:
    def confirmed(event_id: str) -> int | None:
        response = client.call("GET", "signup", f"/v1/events/{event_id}/availability")
        return response.json().get("confirmed") if response.status_code == 200 else None

    return {event["id"]: confirmed(event["id"]) for event in events}


def run(run: Run) -> list[Result]:
    started = run.platform()
    idle = rss_mb(started)
    client = Client(started)
    base, base_cpu = baseline(run)
    whole = rush(run, started, client, 1, pause=False, label="signup rush")
    alone = rush(run, started, client, 1, pause=True, label="signup rush, downstream paused")
    base_again, _ = baseline(run)  # the machine may have changed during the rushes: read both
    four = rush(run, started, client, 4, pause=False, label="signup rush, 4 events")
    after = rss_mb(started)
    base_rate = (base.per_second() + base_again.per_second()) / 2
    cpu = whole.downstream_cpu / max(1, whole.registered())
    target = f"{CAPACITY} confirmed per event"
    return [
        _result(run, "signup rush", whole, base_rate, TARGET_RATIO, target),
        _result(run, "signup rush, downstream paused", alone, base_rate, PAUSED_TARGET_RATIO, target),
        _result(run, "signup rush, 4 events", four, base_rate, None, target),
        Result(
            "downstream CPU per registration",
            1000 * cpu,
            "ms",
            1000 * base_cpu,
            target=f"<= {CPU_TARGET_RATIO:g}x the bare INSERT's CPU per request",
            met=cpu <= CPU_TARGET_RATIO * base_cpu,
            details={"registrations": whole.registered(), "downstream_cpu_seconds": whole.downstream_cpu},
        ),
        *memory(idle, after),
    ]


def _result(run: Run, name: str, rush: Rush, base_rate: float, ratio: float | None, also: str) -> Result:
    rate = rush.posted.per_second()
    exact = rush.exact(run.sizes.rush_clients)
    return Result(
        name,
        rate,
        "reg/s",
        base_rate,
        target=(f">= {ratio:.0%} of baseline; " if ratio else "reported; ") + also,
        met=(ratio is None or rate >= ratio * base_rate) and exact,
        details={
            "answered": rush.posted.succeeded,
            "registered": rush.registered(),
            "refused": rush.posted.failed,
            "seconds": rush.posted.seconds,
            "by_status": rush.counts,
            "confirmed_per_availability": rush.available,
            "exact": exact,
            "downstream_cpu_seconds": rush.downstream_cpu,
            "cpu_seconds_by_process": rush.cpu_by_process,
        },
    )


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
