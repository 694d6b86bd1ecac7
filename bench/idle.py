"""Idle: what the whole platform costs while nobody uses it.

Figure: the CPU that every Procfile process (with its children) and their PostgreSQL backends use together
over `idle_seconds`, once the platform has settled, in percent of one core.
Baseline: the bare INSERT app under the same gunicorn command line and worker count, idle for the same time,
with its PostgreSQL backends: what gunicorn itself costs doing nothing."""

from __future__ import annotations

import time

import requests

from bench.harness import (
    Result,
    Run,
    backends_cpu_seconds,
    cpu_seconds,
    group_cpu_seconds,
    insert_baseline,
    progress,
    used_by,
    used_since,
)

TARGET_PERCENT = 1.0


def baseline(run: Run, seconds: float) -> float:
    with insert_baseline(run) as (served, database_url):
        requests.get(f"{served.url}/healthz", timeout=10)
        time.sleep(run.sizes.idle_warm_up_seconds)
        before, pg_before = group_cpu_seconds(served.pid), backends_cpu_seconds([database_url])
        time.sleep(seconds)
        used = group_cpu_seconds(served.pid) - before + used_since(pg_before, backends_cpu_seconds([database_url]))
    return 100 * used / seconds


def run(run: Run) -> list[Result]:
    started = run.platform()
    seconds = run.sizes.idle_seconds
    databases_ = list((started.database_urls or {}).values())
    time.sleep(run.sizes.idle_warm_up_seconds)
    progress(f"idle: measuring the platform's CPU for {seconds:g}s")
    before, pg_before = cpu_seconds(started), backends_cpu_seconds(databases_)
    time.sleep(seconds)
    after, pg_after = cpu_seconds(started), backends_cpu_seconds(databases_)
    by_process = {name: 100 * used / seconds for name, used in used_by(before, after).items()}
    postgresql = 100 * used_since(pg_before, pg_after) / seconds
    figure = sum(by_process.values()) + postgresql
    progress(f"idle: {figure:.2f} % of a core; by process: {by_process}, PostgreSQL backends {postgresql:.2f}")
    base = baseline(run, seconds)
    progress(f"idle baseline (bare gunicorn app): {base:.2f} % of a core")
    return [
        Result(
            "idle platform CPU",
            figure,
            "% of a core",
            base,
            target=f"<= {TARGET_PERCENT:g} % of a core",
            met=figure <= TARGET_PERCENT,
            details={"seconds": seconds, "by_process_percent": by_process, "postgresql_backends_percent": postgresql},
        )
    ]
