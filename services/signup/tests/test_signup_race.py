"""The real race: the signup web service under gunicorn (several worker processes) as a separate process,
hundreds of registrations at once through HTTP, for 20 seats. On PostgreSQL and on SQLite."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from gather_shared.config import Settings
from gather_shared.db import make_engine, migrate, session_factory
from gather_shared.testing import ADMIN_TOKEN, RATE_LIMITS_OFF, SECRET_KEY, Platform, deliver
from gather_signup.bootstrap import MIGRATIONS
from gather_signup.handlers import handlers
from gather_signup.store import Signup

SEATS = 20
PEOPLE = 200
REPEATS = 40  # the first 40 people press the button twice, at the same time as everyone else
RETRIES = 10  # and the last person's app sends the same request 10 times with one Idempotency-Key


def test_hundreds_of_concurrent_registrations_never_overbook_nor_duplicate(
    database_url: str, tmp_path: Path, service_env: Path, new_event: Callable[..., dict[str, Any]]
) -> None:
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS)
    event = new_event(capacity=SEATS)
    deliver(session_factory(engine), handlers(Settings.from_env("signup")), "event.published.v1", {"event": event})

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    env |= {
        "GATHER_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATHER_SECRET_KEY": SECRET_KEY,
        "WEB_CONCURRENCY": "4",
        "PYTHONUNBUFFERED": "1",
        **RATE_LIMITS_OFF,
    }
    platform = Platform(workdir=tmp_path, env=env, database_urls={"signup": database_url})
    try:
        platform.start("signup")
        platform.wait_ready()
        url = f"{platform.urls['signup']}/v1/events/{event['id']}/signups"

        def register(n: int) -> requests.Response:
            body = {"display_name": f"Person {n}", "email": f"person{n}@example.org", "channels": ["email"]}
            headers = {"Idempotency-Key": f"retry-{n}"} if n == PEOPLE - 1 else {}
            return requests.post(url, json=body, headers=headers, timeout=60)

        people = [*range(PEOPLE), *range(REPEATS), *[PEOPLE - 1] * RETRIES]
        with ThreadPoolExecutor(max_workers=64) as pool:
            responses = list(pool.map(register, people))
    except BaseException:
        print(platform.all_logs())
        raise
    finally:
        platform.stop()

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
    engine.dispose()
