"""The real race: the signup web service under gunicorn (several worker processes) as a separate process,
hundreds of registrations at once through HTTP, for 20 seats, in every mode: taken at once (an event
without verification, or the organizer adding people), and verified (hundreds following their links at
once). On PostgreSQL and on SQLite."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from gather_shared import tokens
from gather_shared.config import Settings
from gather_shared.db import make_engine, migrate, session_factory
from gather_shared.testing import SECRET_KEY, Platform, deliver
from gather_shared.testing.platform import process_env
from gather_shared.web import hash_secret
from gather_signup.bootstrap import MIGRATIONS
from gather_signup.handlers import handlers
from gather_signup.store import Signup

SEATS = 20
PEOPLE = 200
REPEATS = 40  # the first 40 people press the button twice, at the same time as everyone else
RETRIES = 10  # and the last person's app sends the same request 10 times with one Idempotency-Key


ORGANIZER_KEY = "race-organizer-key"


@contextlib.contextmanager
def signup_service(
    database_url: str, tmp_path: Path, new_event: Callable[..., dict[str, Any]], **event: Any
) -> Iterator[tuple[Platform, dict[str, Any], sa.Engine]]:
    """The signup web service under gunicorn (4 workers) as a separate process, on a database that knows
    one event (with `event`'s fields) of an organizer whose key is ORGANIZER_KEY."""
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS)
    snapshot = new_event(capacity=SEATS, **event)
    table = handlers(Settings.from_env("signup"))
    sessions = session_factory(engine)
    key = {"organizer_id": snapshot["organizer_id"], "name": "Mind Matters", "api_key_hash": hash_secret(ORGANIZER_KEY)}
    deliver(sessions, table, "organizer.key_issued.v1", key)
    deliver(sessions, table, "event.published.v1", {"event": snapshot})

    platform = Platform(workdir=tmp_path, env=process_env(workers=4), database_urls={"signup": database_url})
    try:
        with platform.running(["signup"]):
            yield platform, snapshot, engine
    finally:
        engine.dispose()


def body(n: int) -> dict[str, Any]:
    return {"display_name": f"Person {n}", "email": f"person{n}@example.org", "channels": ["email"]}


@pytest.mark.parametrize("mode", ["verification none", "added by the organizer"])
def test_hundreds_of_concurrent_registrations_never_overbook_nor_duplicate(
    database_url: str, tmp_path: Path, service_env: Path, new_event: Callable[..., dict[str, Any]], mode: str
) -> None:
    verification = "none" if mode == "verification none" else "contact"
    with signup_service(database_url, tmp_path, new_event, kind="workshop", verification=verification) as (
        platform,
        event,
        engine,
    ):
        url = f"{platform.urls['signup']}/v1/events/{event['id']}/signups"

        def register(n: int) -> requests.Response:
            headers = {"Idempotency-Key": f"retry-{n}"} if n == PEOPLE - 1 else {}
            if mode == "added by the organizer":
                headers["Authorization"] = f"Bearer {ORGANIZER_KEY}"
            return requests.post(url, json=body(n), headers=headers, timeout=60)

        people = [*range(PEOPLE), *range(REPEATS), *[PEOPLE - 1] * RETRIES]
        with ThreadPoolExecutor(max_workers=64) as pool:
            responses = list(pool.map(register, people))

    assert Counter(r.status_code for r in responses) == {201: PEOPLE + RETRIES, 409: REPEATS}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"already_registered"}
    retried = [r.json() for person, r in zip(people, responses, strict=True) if person == PEOPLE - 1]
    assert all(answer == retried[0] for answer in retried)
    answers = list({r.json()["id"]: r.json() for r in responses if r.status_code == 201}.values())
    assert sum(a["status"] == "confirmed" for a in answers) == SEATS
    positions = sorted(a["waitlist_position"] for a in answers if a["status"] == "waitlisted")
    assert positions == list(range(1, PEOPLE - SEATS + 1))

    with engine.connect() as conn:
        rows = conn.execute(sa.select(Signup.email, Signup.status, Signup.arrival)).all()
    assert len(rows) == len({row.email for row in rows}) == PEOPLE
    assert sum(row.status == "confirmed" for row in rows) == SEATS
    assert sorted(row.arrival for row in rows) == list(range(1, PEOPLE + 1))


def test_hundreds_of_concurrent_verifications_for_the_last_seats_never_overbook(
    database_url: str, tmp_path: Path, service_env: Path, new_event: Callable[..., dict[str, Any]]
) -> None:
    """Everyone asks at once (some twice), then everyone follows their link at once (some twice, from two
    devices): the seats go to the first to verify, nobody is seated twice, the queue is numbered 1..N."""
    with signup_service(database_url, tmp_path, new_event, verification="contact") as (platform, event, engine):
        base = platform.urls["signup"]

        def ask(n: int) -> requests.Response:
            return requests.post(f"{base}/v1/events/{event['id']}/signups", json=body(n), timeout=60)

        with ThreadPoolExecutor(max_workers=64) as pool:
            asked = list(pool.map(ask, [*range(PEOPLE), *range(REPEATS)]))
        assert Counter(r.status_code for r in asked) == {202: PEOPLE + REPEATS}
        assert {tuple(r.json()) for r in asked} == {("status", "expires_at")}
        with engine.connect() as conn:
            pending = conn.execute(sa.select(Signup.id).where(Signup.status == "pending")).scalars().all()
        assert len(pending) == PEOPLE  # asking twice gave one registration, not two

        links = [tokens.verify_token(SECRET_KEY, signup_id) for signup_id in pending]

        def follow(link: str) -> requests.Response:
            return requests.post(f"{base}/v1/verifications/{link}", timeout=60)

        with ThreadPoolExecutor(max_workers=64) as pool:
            followed = list(pool.map(follow, [*links, *links[:REPEATS]]))

    assert Counter(r.status_code for r in followed) == {200: PEOPLE, 410: REPEATS}
    answers = [r.json() for r in followed if r.status_code == 200]
    assert len({a["id"] for a in answers}) == PEOPLE
    assert sum(a["status"] == "confirmed" for a in answers) == SEATS
    positions = sorted(a["waitlist_position"] for a in answers if a["status"] == "waitlisted")
    assert positions == list(range(1, PEOPLE - SEATS + 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Signup.status, Signup.arrival)).all()
    assert sum(row.status == "confirmed" for row in rows) == SEATS
    assert sorted(row.arrival for row in rows) == list(range(1, PEOPLE + 1))
