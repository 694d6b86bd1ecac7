"""Waking a poller: `notify` in a transaction rings the `listen`er's bell when, and only if, it commits.
What follows a commit (`after_commit`), and SQLite files that keep nothing an erasure overwrote."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gather_shared.db import (
    after_commit,
    checkpoint,
    checkpoint_after_commit,
    listen,
    make_engine,
    notify,
    session_factory,
)
from gather_shared.testing import fresh_pg_database

CHANNEL = "gather_test_work"


@pytest.fixture
def engine(pg_server_url: str) -> Iterator[sa.Engine]:
    with fresh_pg_database(pg_server_url) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def bell(engine: sa.Engine) -> Iterator[threading.Event]:
    bell, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=listen, args=(engine, CHANNEL, bell.set, stop), daemon=True)
    listener.start()
    assert bell.wait(10), "the listener rings once when it starts listening"
    bell.clear()
    yield bell
    stop.set()
    listener.join(10)


def test_a_committed_notify_rings_the_bell_at_commit(engine: sa.Engine, bell: threading.Event) -> None:
    with session_factory(engine).begin() as session:
        notify(session, CHANNEL)
        notify(session, CHANNEL)  # a second call in the same transaction changes nothing
        assert not bell.wait(0.3), "rang before the commit: the work would not be visible yet"
    assert bell.wait(10)


def test_a_session_running_two_transactions_notifies_in_each(engine: sa.Engine, bell: threading.Event) -> None:
    with session_factory(engine)() as session:
        for _ in range(2):
            with session.begin():
                notify(session, CHANNEL)
            assert bell.wait(10)
            bell.clear()


def test_a_rolled_back_notify_rings_nothing(engine: sa.Engine, bell: threading.Event) -> None:
    with pytest.raises(RuntimeError), session_factory(engine).begin() as session:
        notify(session, CHANNEL)
        raise RuntimeError("the change failed")
    assert not bell.wait(0.5)


def test_on_sqlite_notify_and_listen_do_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    with session_factory(engine).begin() as session:
        notify(session, CHANNEL)  # no error: polling finds the work there
    bell = threading.Event()
    listen(engine, CHANNEL, bell.set, threading.Event())  # returns at once
    assert not bell.is_set()


def test_what_follows_a_commit_runs_after_it_once_and_never_after_a_rollback(tmp_path: Path) -> None:
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/x.db"))
    ran: list[str] = []
    with sessions.begin() as session:
        after_commit(session, "files", lambda: ran.append("first"))
        after_commit(session, "files", lambda: ran.append("second"))  # the same key: one action
        assert ran == []
    assert ran == ["second"]
    with pytest.raises(RuntimeError), sessions.begin() as session:
        after_commit(session, "files", lambda: ran.append("rolled back"))
        raise RuntimeError("the change failed")
    with sessions.begin():
        pass
    assert ran == ["second"]


def test_sqlite_files_keep_nothing_an_erasure_overwrote(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/people.db")
    sessions = session_factory(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.exec_driver_sql("INSERT INTO people (email) VALUES ('robin.quill@example.org'), ('kept@example.org')")
    checkpoint(engine)  # as SQLite does by itself now and then: the row is in the database file now
    files = [tmp_path / "people.db", tmp_path / "people.db-wal"]
    assert b"robin.quill" in (tmp_path / "people.db").read_bytes()

    with sessions.begin() as session:  # as the relay deletes a message once sent, and erasure the rest
        session.execute(sa.text("DELETE FROM people WHERE email LIKE 'robin%'"))
        checkpoint_after_commit(session)
    assert b"robin.quill" not in b"".join(path.read_bytes() for path in files)
    assert (tmp_path / "people.db-wal").stat().st_size == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT email FROM people").scalars().all() == ["kept@example.org"]
        # Set on every connection: some builds of SQLite (Debian's) have it on already, most do not.
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
