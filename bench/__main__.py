"""`python -m bench [--tiny] [--only NAME ...] [--workers N] [--output PATH]`: run the benchmarks, print
one table, write the results as JSON. Exits 2 when the servers are unreachable, 1 when a benchmark broke
(a figure that misses its target is reported, not an error)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import email_latency, harness, idle, listing, pages, pipeline, reminders, signup_rush
from bench.harness import Result, Run
from bench.sinks import SmsSink, SmtpSink

BENCHMARKS: dict[str, Callable[[Run], list[Result]]] = {
    "idle": idle.run,  # first: on a platform nothing has used yet
    "signup_rush": signup_rush.run,
    "pipeline": pipeline.run,
    "email_latency": email_latency.run,
    "listing": listing.run,
    "pages": pages.run,
    "reminders": reminders.run,  # last: it leaves the most work behind (10,000 confirmations to send)
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: proves the harness runs, measures nothing")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these (repeatable)")
    # 4 (two per core): the workers spend most of their time waiting for PostgreSQL (docs/benchmarks.md,
    # "WEB_CONCURRENCY", has the figures).
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "4")),
        help="gunicorn workers per web service and baseline (default: WEB_CONCURRENCY or 4)",
    )
    parser.add_argument("--output", type=Path, default=harness.BENCH_ROOT / "bench" / "results.json")
    args = parser.parse_args()

    database_url, amqp_url = harness.servers_from_env()
    why = harness.unreachable(database_url, amqp_url)
    if why:
        print(f"bench: cannot run: {why}", file=sys.stderr, flush=True)
        return 2
    started_at = datetime.now(UTC)
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        run = Run(
            database_url,
            amqp_url,
            args.workers,
            harness.TINY if args.tiny else harness.FULL,
            stack.enter_context(SmtpSink()),
            stack.enter_context(SmsSink()),
            stack,
        )
        for name in args.only or BENCHMARKS:
            harness.progress(f"=== {name}")
            began = time.monotonic()
            try:
                run.settle()
                results += BENCHMARKS[name](run)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
                traceback.print_exc()
                results.append(Result(name, None, "", error=f"{type(exc).__name__}: {exc}"))
            harness.progress(f"=== {name} took {time.monotonic() - began:.0f}s")

    print("\n" + harness.table(results), flush=True)
    args.output.write_text(
        json.dumps(
            {
                "started_at": started_at.isoformat(),
                "machine": harness.machine(),
                "workers": run.workers,
                "sizes": run.sizes.__dict__,
                "results": [r.as_json() for r in results],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"\nwritten: {args.output}", flush=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
