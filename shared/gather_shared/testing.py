"""Gather's pytest plugin (registered through the `pytest11` entry point, so every test directory and any
single test file gets these fixtures).

Tiers: tests that need real PostgreSQL / RabbitMQ ask for `pg_server_url` / `amqp_url`. Those come from
GATHER_TEST_DATABASE_URL / GATHER_TEST_AMQP_URL when set, else from testcontainers when a Docker engine
answers, else the tests are skipped — or, with GATHER_REQUIRE_SERVICES=1, fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("GATHER_REQUIRE_SERVICES") == "1"
ADMIN_TOKEN = "test-admin-token"
SECRET_KEY = "test-secret-key"  # outside the embedded default a process refuses to start without one


# --- tiers: where the real servers come from --------------------------------------------------------


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no Docker"
        return False


@dataclass
class _Tier:
    env_var: str
    url: str | None = None
    why_not: str | None = None
    container: Any = None
    resolved: bool = False


_TIERS = {"postgresql": _Tier("GATHER_TEST_DATABASE_URL"), "rabbitmq": _Tier("GATHER_TEST_AMQP_URL")}


def _resolve(name: str) -> _Tier:
    tier = _TIERS[name]
    if tier.resolved:
        return tier
    tier.resolved = True
    tier.url = os.environ.get(tier.env_var)
    if tier.url:
        return tier
    if not _docker_answers():
        tier.why_not = f"{name} tier skipped: {tier.env_var} is not set and no Docker engine answers"
        return tier
    if name == "postgresql":
        from testcontainers.community.postgres import PostgresContainer

        tier.container = PostgresContainer("postgres:16-alpine", driver=None).start()
        tier.url = tier.container.get_connection_url()
    else:
        from testcontainers.community.rabbitmq import RabbitMqContainer

        tier.container = RabbitMqContainer("rabbitmq:3.13-management").start()
        params = tier.container.get_connection_params()
        tier.url = f"amqp://guest:guest@{params.host}:{params.port}//"
    return tier


def _require(name: str) -> str:
    tier = _resolve(name)
    if tier.url is None:
        if REQUIRE:
            pytest.fail(f"GATHER_REQUIRE_SERVICES=1 but {tier.why_not}", pytrace=False)
        pytest.skip(tier.why_not)
    return tier.url


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for name, tier in _TIERS.items():
        source = os.environ.get(tier.env_var)
        lines.append(
            f"gather {name} tier: "
            + (
                f"{tier.env_var}={source}"
                if source
                else "testcontainers if a Docker engine answers, else skipped"
                + (" (GATHER_REQUIRE_SERVICES=1: fails instead)" if REQUIRE else "")
            )
        )
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for tier in _TIERS.values():
        if tier.why_not:
            terminalreporter.write_line(f"gather: {tier.why_not}", yellow=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for tier in _TIERS.values():
        if tier.container is not None:
            tier.container.stop()


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return _require("postgresql")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return _require("rabbitmq")


# --- databases --------------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_pg_database(server_url: str, prefix: str = "gather_test") -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards. (The benchmarks use their own
    `prefix`, so that a clean-up of left-over test databases never drops one in use.)"""
    from gather_shared.db import sqlalchemy_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that uses it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
        return
    with fresh_pg_database(request.getfixturevalue("pg_server_url")) as url:
        yield url


@contextlib.contextmanager
def module_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, service: str, **env: str
) -> Iterator[str]:
    """For a module-scoped fixture parametrised over ("sqlite", "postgresql"): a working directory and a
    migrated-on-start database of its own for `service`, and the GATHER_* settings pointing at them, for
    the whole module (creating a PostgreSQL database per test would cost most of the suite's time; pair
    it with `empty_tables` before each test). Yields the database URL; `env` adds settings."""
    workdir = tmp_path_factory.mktemp(service)
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir}/test.db"
        else:
            url = stack.enter_context(fresh_pg_database(request.getfixturevalue("pg_server_url")))
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.chdir(workdir)
        for name in os.environ:
            if name.startswith("GATHER_") and not name.startswith("GATHER_TEST_") and name != "GATHER_REQUIRE_SERVICES":
                patch.delenv(name)
        settings = {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY, "GATHER_DATABASE_URL": url}
        for name, value in (settings | env).items():
            patch.setenv(name, value)
        yield url


def empty_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Delete every row of a service's tables, bus tables included."""
    from gather_shared.db import bus_metadata

    with engine.begin() as conn:
        for table in [*reversed(metadata.sorted_tables), *bus_metadata.sorted_tables]:
            conn.execute(table.delete())


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in a fresh working directory (so `var/` is the test's own) with a known admin token."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATHER_ADMIN_TOKEN", ADMIN_TOKEN)
    for name in ("GATHER_BROKER_URL", "GATHER_DATABASE_URL", "GATHER_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# --- the broker -------------------------------------------------------------------------------------


def reset_broker(url: str) -> None:
    """Delete Gather's exchange and queues so that a test starts with no message left by another."""
    import kombu

    from gather_shared.bus import topology

    with kombu.Connection(url, connect_timeout=5) as conn:
        for q in topology.CONSUMERS.values():
            names = [q.name, q.dlq, *(q.retry_queue(d) for d in topology.RETRY_DELAYS_SECONDS)]
            for name in names:
                channel = conn.channel()
                try:
                    channel.queue_delete(name)
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        channel = conn.channel()
        channel.exchange_delete(topology.EXCHANGE)
        channel.close()


@contextlib.contextmanager
def fresh_vhost(amqp_url: str, prefix: str = "gather_test") -> Iterator[str]:
    """A broker URL no other test shares: a new virtual host when this machine runs the broker (with
    rabbitmqctl at hand), else the given one emptied of Gather's queues. (`prefix`: as fresh_pg_database.)"""
    parts = urlsplit(amqp_url)
    if not (shutil.which("rabbitmqctl") and parts.hostname in ("127.0.0.1", "localhost")):
        reset_broker(amqp_url)
        yield amqp_url
        return
    vhost = f"{prefix}_{uuid.uuid4().hex[:12]}"
    user = parts.username or "guest"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    try:
        yield urlunsplit(parts._replace(path=f"/{vhost}"))
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def _rabbitmqctl(*args: str) -> None:
    """rabbitmqctl, tried again a few times: right after a broker restart (a reliability test does one)
    the CLI can fail for a moment although the broker answers AMQP already."""
    for attempt in range(5):
        result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True)
        if result.returncode == 0:
            return
        time.sleep(1 + attempt)
    raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")


@pytest.fixture
def clean_amqp_url(amqp_url: str) -> Iterator[str]:
    with fresh_vhost(amqp_url) as url:
        yield url


# --- the whole platform, as separate processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile() -> dict[str, str]:
    """The Procfile's processes: the tests start exactly what `make run` starts."""
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


@dataclass
class Platform:
    """Gather's processes running in `workdir`; `urls` maps each web service to its base URL."""

    workdir: Path
    env: dict[str, str]
    database_urls: dict[str, str] | None = None  # service → URL; None: each service's SQLite under var/
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str) -> None:
        command = procfile()[name]
        if name in ("events", "signup", "notifications"):
            port = int(self.urls[name].rsplit(":", 1)[1]) if name in self.urls else free_port()
            command = re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", command)
            self.urls[name] = f"http://127.0.0.1:{port}"
        command = command.replace("deploy/", f"{REPO}/deploy/")
        env = dict(self.env)
        if self.database_urls:
            env["GATHER_DATABASE_URL"] = self.database_urls[name.split("-")[0]]
        argv = shlex.split(command)
        argv[0] = str(Path(sys.executable).parent / argv[0]) if argv[0] != "python" else sys.executable
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=env,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3  # a test needs no graceful shutdown; the next test needs the cores
        for name in list(self.processes):
            process = self.processes.pop(name)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        for name, url in self.urls.items():
            while True:
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                exited = [n for n, p in self.processes.items() if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    raise AssertionError(f"not ready: {name}; exited: {exited}")
                time.sleep(0.2)

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.logs.get(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""

    def all_logs(self) -> str:
        return "\n".join(f"===== {name}\n{self.tail(name, 200)}" for name in self.logs)


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.2, message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; returns its value. Tests wait for outcomes, never for time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextlib.contextmanager
def running_platform(
    workdir: Path, database_urls: dict[str, str] | None, broker_url: str | None, extra_env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """Start every Procfile process in `workdir`. `database_urls` maps service → URL (None: SQLite under
    var/); `broker_url` None means the embedded filesystem transport."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    env |= {
        "GATHER_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATHER_SECRET_KEY": SECRET_KEY,
        "WEB_CONCURRENCY": "2",
        "PYTHONUNBUFFERED": "1",
    }
    if broker_url:
        env["GATHER_BROKER_URL"] = broker_url
    env |= extra_env or {}
    platform = Platform(workdir=workdir, env=env, database_urls=database_urls)
    try:
        for name in procfile():
            platform.start(name)
        platform.wait_ready()
        yield platform
    except BaseException:
        print(platform.all_logs())
        raise
    finally:
        platform.stop()


# --- talking to a running platform ------------------------------------------------------------------


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid event, one week from now, in person; override any field."""
    from datetime import UTC, datetime, timedelta

    starts = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    body = {
        "title": "Peer support circle",
        "summary": "A safe space to talk.",
        "kind": "support_group",
        "tags": ["anxiety", "peer-support"],
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1, minutes=30)).isoformat(),
        "timezone": "Europe/London",
        "format": "in_person",
        "venue": {"name": "Community Hall", "address": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
        "capacity": 10,
        "waitlist_enabled": True,
        "language": "en",
    }
    return body | overrides


class Client:
    """The HTTP calls a user makes, against a running Platform."""

    def __init__(self, platform: Platform) -> None:
        import requests

        self.http = requests.Session()
        self.urls = platform.urls

    def call(self, method: str, service: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.urls[service] + path, headers=headers, timeout=30, **kwargs)

    def organizer(self, name: str = "Mind Matters") -> dict[str, Any]:
        response = self.call(
            "POST", "events", "/v1/organizers", ADMIN_TOKEN, json={"name": name, "email": "org@example.org"}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def published_event(self, api_key: str, **overrides: Any) -> dict[str, Any]:
        response = self.call("POST", "events", "/v1/events", api_key, json=event_body(**overrides))
        assert response.status_code == 201, response.text
        response = self.call("POST", "events", f"/v1/events/{response.json()['id']}/publish", api_key)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, event_id: str, wait: bool = True, headers: dict[str, str] | None = None, **body: Any) -> Any:
        """Register; with `wait`, retry while the signup service has not yet heard of the event."""
        body = {"display_name": "Sam", "email": "sam@example.org", "channels": ["email"]} | body
        deadline = time.monotonic() + 30
        while True:
            response = self.call(
                "POST", "signup", f"/v1/events/{event_id}/signups", json=body, headers=dict(headers or {})
            )
            if not (wait and response.status_code == 404 and time.monotonic() < deadline):
                return response
            time.sleep(0.1)

    def notifications(self, **params: Any) -> list[dict[str, Any]]:
        response = self.call("GET", "notifications", "/v1/notifications", ADMIN_TOKEN, params=params | {"limit": 100})
        assert response.status_code == 200, response.text
        return response.json()["items"]


# --- messages in and out, without a broker ----------------------------------------------------------


def deliver(
    sessions: Any,
    handlers: dict[str, Any],
    type_: str,
    data: dict[str, Any],
    source: str | None = None,
    message_id: str | None = None,
    time: Any = None,
) -> Any:
    """Hand a message to a service's handlers exactly as its consumer would (validation, inbox,
    one transaction). Returns the Message. Deliver the same `message_id` twice to test redelivery;
    give `time` (an aware datetime) to send a message created earlier or later. `source` defaults to
    the one that may send `type_`."""
    import json

    from gather_shared import bus, envelope, messages
    from gather_shared.bus.topology import sender

    body = envelope.build(type_, source or sender(type_), messages.dump(type_, data), None)
    if message_id is not None:
        body["id"] = message_id
    if time is not None:
        body["time"] = time.isoformat()
    message = bus.received(json.dumps(body))
    bus.handle(sessions, handlers, message)
    return message


def outbox_messages(engine: Any) -> list[dict[str, Any]]:
    """The messages a service has queued and not yet published, each parsed and validated against its
    schema exactly as a consumer would (so a test fails if a service emits anything invalid)."""
    from gather_shared import envelope
    from gather_shared.db import outbox_table

    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_table.c.body).order_by(outbox_table.c.id)).all()
    return [envelope.parse(row.body) for row in rows]
