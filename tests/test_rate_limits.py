"""Rate limits, tried as an attacker would: a flood from one address, one contact or at one event meets 429
problem+json with Retry-After and does not fill the event; the count is shared by every gunicorn worker
(in the service's database, and in Redis); a forged X-Forwarded-For escapes nothing."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from gather_shared import testing, web
from gather_shared.config import Settings
from gather_shared.db import make_engine, migrate, session_factory
from gather_shared.ratelimit import DatabaseStorage
from gather_shared.testing import ADMIN_TOKEN, SECRET_KEY, deliver, free_port, wait_for
from gather_signup.app import create_app
from gather_signup.bootstrap import MIGRATIONS
from gather_signup.handlers import handlers
from gather_signup.store import metadata

ORGANIZER_KEY = "organizer-key-0123456789abcdef"
#: Small limits, so that a flood reaches them in a few requests.
LIMITS = {
    "GATHER_RATE_LIMIT_ENABLED": "true",
    "GATHER_RATE_LIMIT_PER_ADDRESS": "5/minute",
    "GATHER_RATE_LIMIT_PER_CONTACT": "3/hour",
    "GATHER_RATE_LIMIT_PER_EVENT": "8/minute",
    "GATHER_RATE_LIMIT_PER_KEY": "4/minute",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def limited_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The signup app with small limits, counted in its own database (SQLite, then PostgreSQL). The
    address the test client comes from is trusted as a proxy only where a test says so."""
    with testing.module_service(request, tmp_path_factory, "signup", **LIMITS, GATHER_TRUSTED_PROXIES="192.0.2.1"):
        app = create_app()
        yield app
        app.extensions["gather_runtime"].engine.dispose()


@pytest.fixture
def client(limited_app: Flask) -> FlaskClient:
    rt = limited_app.extensions["gather_runtime"]
    testing.empty_tables(rt.engine, metadata)  # the counters too: each test starts with none
    table = handlers(rt.settings)
    key = {"organizer_id": uuid.UUID(int=1), "name": "Mind Matters", "api_key_hash": web.hash_secret(ORGANIZER_KEY)}
    deliver(rt.sessions, table, "organizer.key_issued.v1", key)
    return limited_app.test_client()


def open_event(client: FlaskClient, capacity: int = 20) -> uuid.UUID:
    """A workshop taking registrations at once, with more seats than any limit lets through."""
    rt = client.application.extensions["gather_runtime"]
    snapshot = testing.event_snapshot(kind="workshop", verification="none", capacity=capacity)
    deliver(rt.sessions, handlers(rt.settings), "event.published.v1", {"event": snapshot})
    return snapshot["id"]


def register(client: FlaskClient, event_id: uuid.UUID, n: int, address: str = "203.0.113.7", **headers: str) -> Any:
    body = {"display_name": f"Person {n}", "email": f"person{n}@example.org", "channels": ["email"]}
    return client.post(
        f"/v1/events/{event_id}/signups", json=body, headers=headers, environ_base={"REMOTE_ADDR": address}
    )


def confirmed(client: FlaskClient, event_id: uuid.UUID) -> int:
    return client.get(f"/v1/events/{event_id}/availability").get_json()["confirmed"]


def assert_rate_limited(response: Any, window: int = 60) -> None:
    """A 429 problem that says when to try again: within the window of the limit met (in seconds)."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= window + 1


def test_a_flood_from_one_address_meets_429_and_does_not_fill_the_event(client: FlaskClient) -> None:
    event_id = open_event(client, capacity=20)
    answers = [register(client, event_id, n) for n in range(12)]

    assert [a.status_code for a in answers[:5]] == [201] * 5
    for answer in answers[5:]:
        assert_rate_limited(answer)
    assert confirmed(client, event_id) == 5
    # Someone else, from another address, still gets a place.
    assert register(client, event_id, 99, address="198.51.100.20").status_code == 201


def test_a_forged_x_forwarded_for_does_not_escape_the_limit(client: FlaskClient) -> None:
    event_id = open_event(client)
    answers = [register(client, event_id, n, **{"X-Forwarded-For": f"198.51.100.{n}, 10.0.0.{n}"}) for n in range(8)]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 3
    assert confirmed(client, event_id) == 5


def test_behind_the_trusted_proxy_each_client_counts_on_its_own(client: FlaskClient) -> None:
    event_id = open_event(client)
    proxy = "192.0.2.1"  # GATHER_TRUSTED_PROXIES
    for n in range(6):  # one more than an address may send, each from a client of its own
        forwarded = {"X-Forwarded-For": f"203.0.113.200, 198.51.100.{n}"}
        assert register(client, event_id, n, address=proxy, **forwarded).status_code == 201
    # …and one client stays limited whatever it writes in front of what the proxy added.
    for n in range(10, 16):
        forwarded = {"X-Forwarded-For": f"203.0.113.{n}, 198.51.100.77"}
        last = register(client, event_id, n, address=proxy, **forwarded)
    assert_rate_limited(last)


def test_one_contact_cannot_be_registered_over_and_over(client: FlaskClient) -> None:
    """Per contact: a victim's address, typed in many spellings from many addresses, meets the limit."""
    events = [open_event(client) for _ in range(5)]
    spellings = ["victim@example.org", "VICTIM@example.org", "victim+1@example.org", "victim+2@Example.org"]
    answers = [
        client.post(
            f"/v1/events/{event_id}/signups",
            json={"display_name": "V", "email": email, "channels": ["email"]},
            environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
        )
        for n, (event_id, email) in enumerate(zip(events, spellings, strict=False))
    ]
    assert [a.status_code for a in answers[:3]] == [201] * 3
    assert_rate_limited(answers[3], window=3600)


def test_one_event_cannot_be_flooded_from_many_addresses(client: FlaskClient) -> None:
    event_id = open_event(client, capacity=30)
    answers = [register(client, event_id, n, address=f"198.51.100.{n}") for n in range(10)]
    assert [a.status_code for a in answers] == [201] * 8 + [429] * 2
    assert confirmed(client, event_id) == 8


def test_organizer_calls_are_limited_per_key(client: FlaskClient) -> None:
    event_id = open_event(client)
    bearer = {"Authorization": f"Bearer {ORGANIZER_KEY}"}
    answers = [client.get(f"/v1/events/{event_id}/signups", headers=bearer) for _ in range(6)]
    assert [a.status_code for a in answers[:4]] == [200] * 4
    assert_rate_limited(answers[4])


# --- across the workers of a real gunicorn ------------------------------------------------------------


@contextlib.contextmanager
def signup_gunicorn(
    workdir: Path, database_url: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, uuid.UUID, Path]]:
    """The signup service as the Procfile starts it, under gunicorn with 2 workers, knowing one open event;
    each access line names the worker (pid) that answered. Yields its URL, the event's id and the log."""
    settings = {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY, "GATHER_DATABASE_URL": database_url}
    settings |= LIMITS | env
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    engine = make_engine(database_url)
    migrate(engine, MIGRATIONS)
    snapshot = testing.event_snapshot(kind="workshop", verification="none", capacity=50)
    deliver(session_factory(engine), handlers(Settings.from_env("signup")), "event.published.v1", {"event": snapshot})
    engine.dispose()

    port = free_port()
    command = testing.procfile()["signup"].replace("deploy/", f"{testing.REPO}/deploy/")
    argv = shlex.split(re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", command))
    argv[0] = str(Path(sys.executable).parent / argv[0])
    argv += ["--access-logformat", "pid=%(p)s %(s)s"]
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    process_env |= settings | {"WEB_CONCURRENCY": "2", "PYTHONUNBUFFERED": "1"}
    log = workdir / "signup.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=workdir, env=process_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), timeout=60, message="signup under gunicorn")
        # Both workers up before the flood: else the first one booted may answer all of it.
        wait_for(lambda: _both_workers_answer(url, log), timeout=60, message="both gunicorn workers to answer")
        yield url, snapshot["id"], log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _both_workers_answer(url: str, log: Path) -> bool:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: _ready(url), range(4)))
    return len(set(re.findall(r"pid=<(\d+)> 200", log.read_text()))) == 2


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def flood(url: str, event_id: uuid.UUID, count: int) -> list[int]:
    """`count` registrations from this address, 8 at a time, each on a connection of its own."""

    def one(n: int) -> int:
        body = {"display_name": f"Person {n}", "email": f"person{n}@example.org", "channels": ["email"]}
        return requests.post(f"{url}/v1/events/{event_id}/signups", json=body, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def test_the_limit_holds_across_two_gunicorn_workers(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted in the service's own database (SQLite, then PostgreSQL)."""
    with signup_gunicorn(tmp_path, database_url, {}, monkeypatch) as (url, event_id, log):
        statuses = flood(url, event_id, 16)
    assert_one_address_let_through(statuses, log)


def test_the_limit_holds_across_two_gunicorn_workers_counting_in_redis(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh secret: the counters' keys are HMACs with it, so Redis holds none of an earlier run's.
    env = {"GATHER_RATE_LIMIT_STORAGE_URL": redis_url, "GATHER_SECRET_KEY": secrets.token_urlsafe(16)}
    with signup_gunicorn(tmp_path, f"sqlite:///{tmp_path}/signup.db", env, monkeypatch) as (url, event_id, log):
        statuses = flood(url, event_id, 16)
    assert_one_address_let_through(statuses, log)


def assert_one_address_let_through(statuses: list[int], log: Path) -> None:
    workers = set(re.findall(r"pid=<(\d+)> (?:201|429)", log.read_text()))
    assert len(workers) == 2, log.read_text()  # both workers answered part of the flood…
    assert statuses.count(201) == 5, statuses  # …and together they let through what one address may send
    assert set(statuses) == {201, 429}


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis on this machine: the store several machines share in production (docs/operations.md)."""
    import redis

    url = os.environ.get("GATHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if testing.tiers.REQUIRE:
            pytest.fail(f"GATHER_REQUIRE_SERVICES=1 but Redis does not answer at {url}: {exc}")
        pytest.skip(f"redis tier skipped: nothing answers at {url}")
    return url


def test_a_counter_starts_again_when_its_window_ends(client: FlaskClient) -> None:
    rt = client.application.extensions["gather_runtime"]
    storage = DatabaseStorage(engine=rt.engine)
    assert storage.incr("k", 1) == 1
    assert storage.incr("k", 1) == 2
    wait_for(lambda: storage.get("k") == 0, timeout=5, message="the window to end")
    assert storage.incr("k", 1) == 1
