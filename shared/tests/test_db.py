"""Waking a poller: `notify` in a transaction rings the `listen`er's bell when, and only if, it commits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gather_shared.db import listen, make_engine, notify, session_factory
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
