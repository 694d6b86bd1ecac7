"""Starting a service's processes: settings, database (migrated), and the long-running workers."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

from alembic import command
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import bus, logs, metrics
from gather_shared.bus.topology import CONSUMERS
from gather_shared.config import VAR_DIR, Settings, SettingsError
from gather_shared.db import alembic_config, make_engine, migrate, session_factory


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


#: Every file and folder a Gather process creates is its owner's alone (0600 / 0700): the admin token, the
#: secret key, SQLite files and their -wal/-shm, outgoing emails and SMS, broker messages all hold secrets
#: or personal data.
UMASK = 0o077
#: gunicorn's exit status for "worker failed to boot": its master then stops, instead of starting one
#: failing worker after another.
EXIT_BAD_SETTINGS = 3


def keep_files_private() -> None:
    """The first thing every Gather process does (service start, app factories, `make run`)."""
    os.umask(UMASK)
    if VAR_DIR.is_dir() and VAR_DIR.stat().st_uid == os.getuid():
        VAR_DIR.chmod(0o700)  # a var/ made by an older version, or by hand


def settings_or_exit(service: str) -> Settings:
    """The service's settings, or one line saying which one is wrong and the exit status gunicorn reads as
    "worker failed to boot"."""
    try:
        return Settings.from_env(service)
    except SettingsError as exc:
        print(f"gather_{service}: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_SETTINGS)


def start(service: str, migrations: str) -> Runtime:
    """Read the settings, connect to the database and bring its tables up to date."""
    keep_files_private()
    logs.configure()
    settings = settings_or_exit(service)
    engine = make_engine(settings.database_url)
    migrate(engine, migrations)
    return Runtime(settings, engine, session_factory(engine))


def settle() -> None:
    """Once a process (a worker, a gunicorn master or worker: never a test's process, which builds and drops
    apps) has imported its code: what it holds by now lives as long as the process, so the garbage collector
    stops scanning it (gc.freeze), after collecting what importing left behind. Scanning it was wasted work
    in every full collection and, above all, at exit, paid by every process at once when a deployment (or a
    test) stops them all (docs/benchmarks.md, "Measurements behind the code")."""
    gc.collect()
    gc.freeze()


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_every(
    seconds: float,
    stop: threading.Event,
    sessions: sessionmaker[Session],
    job: Callable[[Session], str | None],
    log: logging.Logger,
    failed: str,
) -> None:
    """A scheduled job's loop: `job` in a transaction of its own, now and then every `seconds` until `stop` is
    set. What it returns, if anything, goes to `log` once committed; when it fails, `failed` does, with the
    exception, and the job is tried again at the next run."""
    while not stop.is_set():
        try:
            with sessions.begin() as session:
                done = job(session)
            if done:
                log.info(done)
        except Exception:
            log.exception(failed)
        stop.wait(seconds)


def run_relay(rt: Runtime) -> None:
    bus.Relay(rt.settings.broker_url, rt.sessions).run(stop_on_signals())


def run_consumer(rt: Runtime, handlers: dict[str, bus.Handler]) -> None:
    consumer = bus.Consumer(rt.settings.broker_url, CONSUMERS[rt.settings.service], rt.sessions, handlers)

    def _stop(*_: object) -> None:
        consumer.should_stop = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    consumer.run()


def make_migration(migrations: str, message: str) -> None:
    """Write a new migration by comparing the models with a scratch database upgraded to head."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        migrate(engine, migrations)
        cfg = alembic_config(migrations)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True)


def cli(service: str, migrations: str, workers: dict[str, Callable[[], None]]) -> None:
    """`python -m gather_<service> <command>`: one entry point for each of a service's workers, plus
    `migrate` (upgrade the database now) and `make-migration "what changed"` (for developers)."""
    parser = argparse.ArgumentParser(prog=f"python -m gather_{service}")
    parser.add_argument("command", choices=sorted([*workers, "migrate", "make-migration"]))
    parser.add_argument("message", nargs="?", default="change")
    args = parser.parse_args()
    if args.command == "migrate":
        start(service, migrations)
    elif args.command == "make-migration":
        make_migration(migrations, args.message)
    else:
        settle()
        metrics.serve_for_worker()
        workers[args.command]()
