"""What every benchmark shares: where the servers are, the run's sizes, results and progress lines, the
platform and the gunicorn-served baselines, and process memory."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import kombu
import requests
import sqlalchemy as sa

from bench import baseline_app
from bench.sinks import SmsSink, SmtpSink
from gather_shared.bus import topology
from gather_shared.db import make_engine, sqlalchemy_url
from gather_shared.testing import (
    REPO,
    Client,
    Platform,
    free_port,
    fresh_pg_databases,
    fresh_vhost,
    procfile,
    running_platform,
    wait_for,
)
from gather_shared.testing.platform import die_with_parent

BENCH_ROOT = Path(__file__).resolve().parents[1]  # on gunicorn's path, for the baseline apps
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
SERVICES = ("pages", "events", "signup", "notifications")
#: Names of the benchmarks' databases and virtual hosts: not the tests' `gather_test_…`, which a clean-up
#: of left-over test databases may drop while a benchmark runs.
PREFIX = "gather_bench"
_STARTED = time.monotonic()


# --- the run ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does. `FULL` is what the issue asks for; `TINY` only proves the
    harness still runs end to end (the smoke test)."""

    rush_seconds: float
    rush_clients: int
    pipeline_messages: int
    email_rate: int
    email_seconds: float
    reminders: int
    listing_events: int
    listing_seconds: float
    listing_clients: int
    idle_seconds: float
    #: Idle means after start-up: the gunicorn workers that booted last, and the first timers, are done by then.
    idle_warm_up_seconds: float


#: Each size as (FULL, TINY): the two presets side by side.
_PRESETS = {
    "rush_seconds": (10, 2),
    "rush_clients": (64, 4),
    "pipeline_messages": (5000, 200),
    "email_rate": (100, 20),
    "email_seconds": (10, 1),
    "reminders": (10000, 10),
    "listing_events": (5000, 20),
    "listing_seconds": (10, 1),
    "listing_clients": (16, 4),
    "idle_seconds": (30, 2),
    "idle_warm_up_seconds": (5, 1),
}
FULL = Sizes(**{name: full for name, (full, _) in _PRESETS.items()})
TINY = Sizes(**{name: tiny for name, (_, tiny) in _PRESETS.items()})


#: When reminders go out before an event starts, on the benchmark's platform: long enough that a
#: reminder fan-out never runs into the event's start (events elsewhere in the suite are a week away).
REMINDER_OFFSET_SECONDS = 120


@dataclass
class Run:
    """One `make bench`: the servers, the sizes, the sinks, and the platform (started on first use and
    shared by the benchmarks that need it; `settle` waits until it has no work left)."""

    database_url: str  # a PostgreSQL server: fresh databases are created on it
    amqp_url: str  # a RabbitMQ server: fresh virtual hosts are created on it
    workers: int  # gunicorn workers (WEB_CONCURRENCY), for the services and the baselines alike
    sizes: Sizes
    smtp: SmtpSink
    sms: SmsSink
    stack: contextlib.ExitStack
    _platform: Platform | None = None

    def platform(self) -> Platform:
        if self._platform is None:
            env = {
                "GATHER_SMTP_URL": self.smtp.url,
                "GATHER_REMINDER_OFFSETS": f"{REMINDER_OFFSET_SECONDS}s",
                **self.sms.env(),
            }
            self._platform = self.stack.enter_context(platform(self, **env))
        return self._platform

    def settle(self, timeout: float = 90) -> None:
        """Wait until the platform has nothing left to do from an earlier benchmark: its queues are
        empty and no email or SMS has arrived for a second."""
        if self._platform is None:
            return
        broker_url = self._platform.env["GATHER_BROKER_URL"]

        def quiet() -> bool:
            depth = queue_depth(broker_url)
            idle = time.monotonic() - max(self.smtp.arrivals.last_at(), self.sms.arrivals.last_at())
            if depth or idle < 1:
                progress(f"settling: {depth} messages queued, last email/SMS {idle:.0f}s ago")
                return False
            return True

        try:
            wait_for(quiet, timeout, message="the platform to settle", interval=1.0)
        except TimeoutError:
            progress(f"not settled after {timeout:.0f}s: measuring anyway, the figures below pay for it")


def queue_depth(broker_url: str) -> int:
    """Messages waiting in every consumer's queue."""
    with kombu.Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        try:
            return sum(
                channel.queue_declare(queue=q.name, passive=True).message_count for q in topology.CONSUMERS.values()
            )
        finally:
            channel.close()


def servers_from_env() -> tuple[str, str]:
    """The servers from GATHER_TEST_DATABASE_URL / GATHER_TEST_AMQP_URL, or the local defaults (said so)."""
    urls = []
    defaults = {"GATHER_TEST_DATABASE_URL": DEFAULT_DATABASE_URL, "GATHER_TEST_AMQP_URL": DEFAULT_AMQP_URL}
    for var, default in defaults.items():
        url = os.environ.get(var)
        if not url:
            print(f"bench: {var} is not set; using {default}", flush=True)
            url = default
        urls.append(url)
    return urls[0], urls[1]


def unreachable(database_url: str, amqp_url: str) -> str | None:
    """Why the servers cannot be used, or None when both answer."""
    engine = sa.create_engine(sqlalchemy_url(database_url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        return f"PostgreSQL at {database_url} does not answer ({type(exc).__name__})"
    finally:
        engine.dispose()
    try:
        with kombu.Connection(amqp_url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # noqa: BLE001
        return f"RabbitMQ at {amqp_url} does not answer ({type(exc).__name__})"
    return None


# --- results ----------------------------------------------------------------------------------------


@dataclass
class Result:
    benchmark: str
    figure: float | None
    unit: str
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    unavailable: str | None = None  # why the figure could not be measured (e.g. a feature not built yet)
    error: str | None = None  # the benchmark itself broke

    @property
    def ratio(self) -> float | None:
        if self.figure is None or not self.baseline:
            return None
        return self.figure / self.baseline

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}


def not_available(benchmark: str, unit: str, target: str, why: str) -> Result:
    progress(f"{benchmark}: not available: {why}")
    return Result(benchmark, None, unit, target=target, unavailable=why)


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"


def table(results: list[Result]) -> str:
    rows = [("benchmark", "figure", "baseline", "ratio", "target", "verdict")]
    for r in results:
        verdict = (
            "error" if r.error else "MISSED" if r.met is False else "n/a" if r.unavailable else "met" if r.met else ""
        )
        rows.append(
            (
                r.benchmark,
                _number(r.figure, r.unit),
                _number(r.baseline, r.unit),
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.target,
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.benchmark}: {r.error or r.unavailable}" for r in results if r.error or r.unavailable]
    return "\n".join(lines + (["", "not measured:", *notes] if notes else []))


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "load_average_at_start": os.getloadavg(),
    }


# --- what a benchmark runs against --------------------------------------------------------------------


@contextlib.contextmanager
def databases(run: Run, *names: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database per name, dropped afterwards."""
    with fresh_pg_databases(run.database_url, names, PREFIX) as urls:
        yield urls


def vhost(run: Run) -> contextlib.AbstractContextManager[str]:
    """A fresh RabbitMQ virtual host, deleted afterwards."""
    return fresh_vhost(run.amqp_url, PREFIX)


@contextlib.contextmanager
def platform(run: Run, **extra_env: str) -> Iterator[Platform]:
    """Every Procfile process under gunicorn, as `make run` starts them, on fresh databases and a fresh
    virtual host."""
    progress(f"starting the platform ({run.workers} gunicorn workers per service)")
    with (
        tempfile.TemporaryDirectory(prefix="gather-bench-") as workdir,
        databases(run, *SERVICES) as urls,
        vhost(run) as broker_url,
    ):
        env = {"WEB_CONCURRENCY": str(run.workers)} | extra_env
        with running_platform(Path(workdir), urls, broker_url, env) as started:
            yield started


@contextlib.contextmanager
def insert_baseline(run: Run) -> Iterator[tuple[Served, str]]:
    """The bare INSERT app (bench/baseline_app.py) served by `gunicorn_app` on a fresh database with its
    table; yields it and its database's URL."""
    with databases(run, "baseline") as urls:
        engine = make_engine(urls["baseline"])
        baseline_app.metadata.create_all(engine)
        engine.dispose()
        with gunicorn_app(run, "bench.baseline_app:insert_app()", {"BENCH_DATABASE_URL": urls["baseline"]}) as served:
            yield served, urls["baseline"]


class Served(NamedTuple):
    url: str  # the base URL
    pid: int  # gunicorn's master, leader of the process group of it and its workers


@contextlib.contextmanager
def gunicorn_app(run: Run, app: str, env: dict[str, str]) -> Iterator[Served]:
    """Serve a baseline WSGI app (`module:factory()` under bench/) with exactly the command line the
    Procfile gives the services: same gunicorn config file, same worker count."""
    argv = shlex.split(procfile()["signup"])
    port = free_port()
    argv = [str(Path(sys.executable).parent / argv[0]), *argv[1:-1], "--pythonpath", str(BENCH_ROOT), app]
    argv = [a.replace("deploy/", f"{REPO}/deploy/") for a in argv]
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="gather-bench-baseline-") as workdir:
        log = Path(workdir) / "gunicorn.log"
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            env=os.environ | {"WEB_CONCURRENCY": str(run.workers)} | env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for(
                lambda: process.poll() is not None or _answers(f"{url}/healthz"),
                timeout=30,
                message=f"baseline {app} to answer",
            )
            if process.poll() is not None:
                raise RuntimeError(f"baseline {app} exited:\n{log.read_text()[-2000:]}")
            yield Served(url, process.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


#: An event that takes registrations at once, without a link to the contact first.
AT_ONCE = {"kind": "workshop", "verification": "none"}


def open_event(client: Client, **overrides: Any) -> dict[str, Any]:
    """A published event (from a new organizer) once the signup service has heard of it. A second event
    published after it is registered for (retrying while unknown) as the probe: the signup service
    handles the events' messages in order, so when the probe succeeds the first event is known too.
    Both take registrations at once (`verification: none`): the benchmarks measure the seat rule's path,
    which a verified registration reaches when its link is followed."""
    api_key = client.organizer()["api_key"]
    event = client.published_event(api_key, **(AT_ONCE | overrides))
    probe = client.published_event(api_key, title="Probe", capacity=None, **AT_ONCE)
    response = client.register(probe["id"], display_name="Probe", email="probe@example.org")
    if response.status_code != 201:
        raise RuntimeError(f"the probe registration failed: {response.status_code} {response.text[:300]}")
    return event


# --- memory and CPU, from /proc ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Stat:
    pid: int
    pgrp: int
    cpu_seconds: float  # user + system, its own and its reaped children's
    rss_mb: float


def _stats() -> Iterator[_Stat]:
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        cpu = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
        yield _Stat(int(stat.parent.name), int(fields[2]), cpu, int(fields[21]) * page / 1024 / 1024)


def _by_process(platform: Platform, value: Callable[[_Stat], float]) -> dict[str, float]:
    """`value` summed over each Procfile process with its children (a gunicorn master and its workers):
    every process of its process group, as each was started in a session of its own."""
    groups = {process.pid: name for name, process in platform.processes.items()}
    totals = dict.fromkeys(groups.values(), 0.0)
    for stat in _stats():
        if stat.pgrp in groups:
            totals[groups[stat.pgrp]] += value(stat)
    return totals


def rss_mb(platform: Platform) -> dict[str, float]:
    """Resident memory of each Procfile process with its children."""
    return {name: round(mb, 1) for name, mb in _by_process(platform, lambda s: s.rss_mb).items()}


def cpu_seconds(platform: Platform) -> dict[str, float]:
    """CPU seconds each Procfile process with its children has used so far."""
    return _by_process(platform, lambda s: s.cpu_seconds)


def group_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the process group that `pid` leads (a baseline's gunicorn)."""
    return sum(s.cpu_seconds for s in _stats() if s.pgrp == pid)


def backends_cpu_seconds(database_urls: Iterable[str]) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend now connected to these databases (readable in
    /proc whoever runs PostgreSQL), by process id: `used_since` tells what they used between two looks."""
    urls = list(database_urls)
    names = [sa.make_url(sqlalchemy_url(url)).database for url in urls]
    engine = sa.create_engine(sqlalchemy_url(urls[0]), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            pids = set(
                conn.scalars(
                    sa.text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names) AND pid <> pg_backend_pid()"),
                    {"names": names},
                )
            )
    finally:
        engine.dispose()
    return {s.pid: s.cpu_seconds for s in _stats() if s.pid in pids}


def used_by(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    """CPU seconds each process (or Procfile process) in `after` used between two looks (what appeared since
    counts whole; what ended since is not seen: the figures are a floor)."""
    return {key: seconds - before.get(key, 0.0) for key, seconds in after.items()}


def used_since(before: dict[Any, float], after: dict[Any, float]) -> float:
    """CPU seconds used between two looks, all of `used_by` together."""
    return sum(used_by(before, after).values())
