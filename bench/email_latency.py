"""Registration to email: how long after an attendee sends `POST …/signups` does the confirmation email
reach their mail server, at a steady rate of registrations.

Figure: p99 (and p50) milliseconds from the POST being sent to the local SMTP sink accepting the email,
registrations arriving open-loop at `email_rate` per second for `email_seconds`.
Baseline: the same SMTP send (connect, send, quit) done directly from this process, timed per send."""

from __future__ import annotations

import smtplib
import statistics
import time
from email.message import EmailMessage

import requests

from bench.harness import Result, Run, backends_cpu_seconds, cpu_seconds, open_event, progress, used_by, used_since
from bench.load import Call, paced
from gather_shared.testing import Client

TARGET_P99_MS = 100
CLIENTS = 32  # enough threads that a slow answer never holds back the next arrival


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    if len(samples_ms) < 2:
        return (samples_ms or [0.0])[0], (samples_ms or [0.0])[0]
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return cuts[49], cuts[98]


def direct_sends(port: int, n: int) -> list[float]:
    """Milliseconds per send, one SMTP connection per message as a sender without pooling does."""
    durations = []
    for i in range(n):
        message = EmailMessage()
        message["Subject"] = "You're registered: Latency"
        message["From"] = "Gather <no-reply@gather.invalid>"
        message["To"] = f"direct-{i}@example.org"
        message.set_content("Hello Sam,\n\nyou're registered.\n")
        began = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.send_message(message)
        durations.append((time.monotonic() - began) * 1000)
    return durations


def run(run: Run) -> list[Result]:
    sizes = run.sizes
    n = int(sizes.email_rate * sizes.email_seconds)
    started = run.platform()
    client = Client(started)
    event = open_event(client, title="Latency evening", capacity=None)
    base_p50, base_p99 = percentiles(direct_sends(run.smtp.port, n))
    progress(f"registration to email baseline (direct SMTP): p50 {base_p50:.1f} ms, p99 {base_p99:.1f} ms")

    url = f"{started.urls['signup']}/v1/events/{event['id']}/signups"
    addresses = [f"latency-{i}@example.org" for i in range(n)]

    def call(address: str) -> Call:
        body = {"display_name": "Sam", "email": address, "channels": ["email"]}
        return lambda s: s.post(url, json=body, timeout=60)

    first_arrival = run.smtp.arrivals.count()
    cpu_before = cpu_seconds(started)
    pg_before = backends_cpu_seconds((started.database_urls or {}).values())
    # wrk sends as fast as it is answered (closed loop) and cannot tell when each request went: this open loop,
    # with each attendee's send time, is Python threads (their CPU competes with the platform's).
    progress(f"registration to email: {n} registrations at {sizes.email_rate}/s from Python threads (open loop)")
    outcome = paced([call(a) for a in addresses], sizes.email_rate, CLIENTS, "registrations")
    # From when the attendee pressed the button (the paced start of their POST), so that a web tier slow to
    # answer counts against the figure instead of hiding the work behind it.
    sent = {a: outcome.started + i / sizes.email_rate for i, a in enumerate(addresses)}
    answered = {
        a: sent[a]
        for a, r in zip(addresses, outcome.results, strict=True)
        if isinstance(r, requests.Response) and r.status_code == 201
    }

    deadline = time.monotonic() + 90
    arrived: dict[str, float] = {}
    while len(arrived) < len(answered) and time.monotonic() < deadline:
        for recipient, _subject, at in run.smtp.arrivals.since(first_arrival):
            if recipient in answered:
                arrived.setdefault(recipient, at)
        progress(f"registration to email: {len(arrived)}/{len(answered)} emails accepted")
        time.sleep(1)
    cpu_after = cpu_seconds(started)
    by_process_pg = used_since(pg_before, backends_cpu_seconds((started.database_urls or {}).values()))
    by_process = {name: round(used, 2) for name, used in used_by(cpu_before, cpu_after).items()}
    p50, p99 = percentiles([(arrived[a] - answered[a]) * 1000 for a in arrived])
    missing = n - len(arrived)
    progress(f"registration to email: p50 {p50:.0f} ms, p99 {p99:.0f} ms, {missing} missing")
    return [
        Result(
            "registration to email p99",
            p99,
            "ms",
            base_p99,
            target=f"p99 <= {TARGET_P99_MS} ms",
            met=p99 <= TARGET_P99_MS and missing == 0,
            details={
                "p50_ms": p50,
                "p99_ms": p99,
                "baseline_p50_ms": base_p50,
                "baseline_p99_ms": base_p99,
                "registrations": n,
                "rate_per_second": sizes.email_rate,
                "answered_201": len(answered),
                "emails_missing": missing,
                "cpu_seconds_by_process": by_process,
                "postgresql_cpu_seconds": round(by_process_pg, 2),
            },
        )
    ]
