"""Databases: engines with the right settings per backend, transactions, the bus tables every service
carries (outbox, inbox), and Alembic migrations applied when a process starts."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware datetimes on every backend: stored as UTC, always read back aware.
    (SQLite keeps no offset, so without this a value would come back naive.)"""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        return datetime  # what a value is (keyset cursors decode by it); TypeDecorator knows no better

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Gather stores only aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class TypeMap:
    """Mixed into each service's declarative base, `class Base(TypeMap, DeclarativeBase)`: the column types of
    its annotations, the same in every service (times UTC-aware on every backend, dicts and lists JSON)."""

    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


def is_postgresql(bind: Engine | Session) -> bool:
    """Whether `bind` (an engine, or the one a session uses) is PostgreSQL; Gather's other database is
    SQLite. The one place that tells them apart."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def insert(session: Session | Engine, table: Any) -> Any:
    """An INSERT into `table` (a Table or a mapped class) that can say `on_conflict_do_nothing`: each
    dialect's own construct (PostgreSQL and SQLite spell the clause alike)."""
    return (postgresql.insert if is_postgresql(session) else sqlite.insert)(table)


def sqlalchemy_url(url: str) -> str:
    """A GATHER_DATABASE_URL as SQLAlchemy wants it: PostgreSQL through psycopg 3 (`postgresql://` alone
    would mean psycopg2)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    url = sqlalchemy_url(url)
    # No pool_pre_ping: it costs a round trip per request and per message (docs/benchmarks.md,
    # "Measurements behind the code"). After a database restart, the first use of each stale
    # connection fails instead and the pool replaces it: a web request gets a 503 to retry
    # (web.create_app), a consumer retries that message.
    return sa.create_engine(url, pool_size=5, max_overflow=10, hide_parameters=True)


def _sqlite_engine(url: str) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # What is deleted or overwritten is zeroed in the file, not merely marked free: an erased contact
        # must not stay readable in the database file (see checkpoint for its write-ahead log).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Every transaction takes the write lock up front, so SQLite serialises writers exactly like
        # PostgreSQL's row locks do, instead of failing a reader-turned-writer with "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for `engine`. One unit of work is `with sessions.begin() as session:` (SQLAlchemy's own:
    commit on success, roll back on any exception, then close). What `after_commit` asked for runs once
    the transaction commits."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    sa.event.listen(sessions, "after_commit", _run_after_commit)
    sa.event.listen(sessions, "after_rollback", lambda session: session.info.pop(_AFTER_COMMIT, None))
    return sessions


# --- what follows a commit: files, and SQLite's write-ahead log --------------------------------------

_AFTER_COMMIT = "gather_after_commit"


def after_commit(session: Session, key: str, action: Callable[[], object]) -> None:
    """Run `action` once this transaction of `session` has committed (never if it rolls back): for what
    must follow a change made durable and cannot be part of the transaction, such as deleting the files of
    an erased attendee. One action per `key` and transaction, whatever the calls."""
    session.info.setdefault(_AFTER_COMMIT, {})[key] = action


def _run_after_commit(session: Session) -> None:
    for key, action in session.info.pop(_AFTER_COMMIT, {}).items():
        try:
            action()
        except Exception:
            # The commit stands; whatever the action left undone is logged for the operator.
            log.exception("after commit: %s failed", key)


def checkpoint_after_commit(session: Session) -> None:
    """For a transaction that erases personal data: once it commits, SQLite's write-ahead log is emptied
    too (`checkpoint`). On PostgreSQL it does nothing (docs/privacy.md says what is left there)."""
    if not is_postgresql(session):
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        after_commit(session, "checkpoint", lambda: checkpoint(engine))


def checkpoint(engine: Engine) -> bool:
    """Copy SQLite's write-ahead log (the `-wal` file) into the database file and truncate it to nothing
    (`wal_checkpoint(TRUNCATE)`). The log keeps old versions of every page written since the last
    checkpoint, so until then it holds what an erasure just overwrote. Returns whether it finished: it
    waits (busy_timeout) for readers still on an older snapshot, and gives up after that."""
    connection = engine.raw_connection()
    try:
        # On the DBAPI connection, outside any transaction: a checkpoint cannot run inside one (and the
        # engine's `begin` would open one).
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = (cursor.fetchone() or (0,))[0]  # its one row: (busy, frames in the log, frames checkpointed)
    finally:
        connection.close()
    if not busy:
        return True
    log.warning("checkpoint: readers kept the write-ahead log of %s from being emptied", engine.url.database)
    return False


# --- waking a poller when there is work: PostgreSQL LISTEN/NOTIFY ----------------------------------


def notify(session: Session, channel: str) -> None:
    """Wake whoever `listen`s on `channel` once this transaction commits (PostgreSQL NOTIFY, sent once
    per transaction, delivered at commit, never for a rollback). On SQLite it does nothing: there the
    listener's polling finds the work."""
    if not is_postgresql(session):
        return
    # Remembered per transaction (a Session may run several): channel → the transaction that notified.
    notified = session.info.setdefault("gather_notified", {})
    transaction_ = session.get_transaction()
    if notified.get(channel) is not transaction_:
        notified[channel] = transaction_
        session.execute(sa.select(sa.func.pg_notify(channel, "")))


def listen(engine: Engine, channel: str, ring: Callable[[], None], stop: threading.Event) -> None:
    """Call `ring()` each time a transaction that called `notify(session, channel)` commits, until `stop`
    is set. Run it in a thread of its own; it reconnects after a failure, and rings once on every
    (re)connection for what was committed while nobody listened. Returns at once on SQLite."""
    if not is_postgresql(engine):
        return
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            # A bounded connect: an unreachable server must not hold up a process asked to stop.
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                ring()
                while not stop.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        ring()
        except psycopg.Error:
            log.warning("listening on %s failed; reconnecting in 1 s", channel, exc_info=True)
            stop.wait(1.0)


def wait_for_bell(bell: threading.Event, stop: threading.Event, seconds: float) -> None:
    """Sleep until `bell` is set (by `listen`'s `ring`, say), `stop` is set or `seconds` have passed; `stop`
    is looked at every second, so a process asked to stop does not sleep through it."""
    end = time.monotonic() + seconds
    while not (bell.is_set() or stop.is_set()) and (left := end - time.monotonic()) > 0:
        bell.wait(min(left, 1.0))


#: The bus tables every service carries, defined once: the outbox (messages waiting for the relay) and
#: the inbox (messages already handled, so a redelivery changes nothing).
bus_metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    bus_metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # A copy of the body's correlation id, so that the relay logs it without parsing the body.
    sa.Column("correlation_id", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
)

inbox_table = sa.Table(
    "inbox",
    bus_metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("message_id", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("handled_at", UTCDateTime, nullable=False, default=utcnow),
)


# --- migrations -------------------------------------------------------------------------------------


def alembic_config(script_location: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return cfg


def migrate(engine: Engine, script_location: str) -> None:
    """Upgrade the database to the newest migration. Every process of a service calls this at start;
    a lock makes the first do the work and the others find nothing left to do."""
    cfg = alembic_config(script_location)
    with _migration_lock(engine), engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


def migration_versions(engine: Engine, script_location: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The revisions the database is at (empty: never migrated) and the newest ones `script_location` has."""
    heads = ScriptDirectory.from_config(alembic_config(script_location)).get_heads()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return tuple(sorted(current)), tuple(sorted(heads))


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if is_postgresql(engine):
        key = zlib.crc32(b"gather-migrations")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    lock_path = Path(f"{engine.url.database}.migrate-lock")
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def run_alembic_env(service_metadata: sa.MetaData) -> None:
    """The whole of each service's `migrations/env.py`: run online, on the connection `migrate` passes."""
    from alembic import context

    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=[service_metadata, bus_metadata],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
