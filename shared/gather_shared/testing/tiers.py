"""Where the real servers come from, and a clean place on each for one test.

Tests that need real PostgreSQL / RabbitMQ ask for `pg_server_url` / `amqp_url` (plugin.py). Those come
from GATHER_TEST_DATABASE_URL / GATHER_TEST_AMQP_URL when set, else from testcontainers when a Docker
engine answers, else the tests are skipped — or, with GATHER_REQUIRE_SERVICES=1, fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kombu
import pytest
import sqlalchemy as sa

from gather_shared.bus.topology import TOPIC_EXCHANGE

REQUIRE = os.environ.get("GATHER_REQUIRE_SERVICES") == "1"


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


def require(name: str) -> str:
    """The URL of the `name` server (postgresql or rabbitmq), or skip the test (fail it, with
    GATHER_REQUIRE_SERVICES=1) when there is none."""
    tier = _resolve(name)
    if tier.url is None:
        if REQUIRE:
            pytest.fail(f"GATHER_REQUIRE_SERVICES=1 but {tier.why_not}", pytrace=False)
        pytest.skip(tier.why_not or f"{name} tier skipped")
    return tier.url


def report_header() -> list[str]:
    """Where each tier comes from, for pytest's header."""
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


def skipped() -> list[str]:
    """Why a tier was skipped, for pytest's summary."""
    return [f"gather: {tier.why_not}" for tier in _TIERS.values() if tier.why_not]


def stop_containers() -> None:
    for tier in _TIERS.values():
        if tier.container is not None:
            tier.container.stop()


# --- a clean place for one test ---------------------------------------------------------------------


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


@contextlib.contextmanager
def fresh_pg_databases(server_url: str, names: Iterable[str], prefix: str = "gather_test") -> Iterator[dict[str, str]]:
    """A fresh_pg_database for each of `names` (say, each service of a platform): {name: URL}."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(fresh_pg_database(server_url, prefix)) for name in names}


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


def declare_every_queue(url: str) -> None:
    """What deploy/rabbitmq/definitions.json makes a production broker create at boot (each process then
    declares only its own queues): the exchange and every consumer's queues and bindings."""
    import kombu

    from gather_shared.bus import topology

    with kombu.Connection(url, connect_timeout=5) as conn:
        topology.TOPIC_EXCHANGE(conn.default_channel).declare()
        for q in topology.CONSUMERS.values():
            for queue in topology.queues(q):
                queue(conn.default_channel).declare()


@contextlib.contextmanager
def fresh_vhost(amqp_url: str, prefix: str = "gather_test") -> Iterator[str]:
    """A broker URL no other test shares: a new virtual host when this machine runs the broker (with
    rabbitmqctl at hand), else the given one emptied of Gather's queues. (`prefix`: as fresh_pg_database.)
    Either way it holds every consumer's queues already, as a production broker does from its definitions."""
    parts = urlsplit(amqp_url)
    if not (shutil.which("rabbitmqctl") and parts.hostname in ("127.0.0.1", "localhost")):
        reset_broker(amqp_url)
        declare_every_queue(amqp_url)
        yield amqp_url
        return
    vhost = f"{prefix}_{uuid.uuid4().hex[:12]}"
    user = parts.username or "guest"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    try:
        url = urlunsplit(parts._replace(path=f"/{vhost}"))
        declare_every_queue(url)
        yield url
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


@dataclass(frozen=True)
class Copy:
    """A message as it went over the broker."""

    headers: dict[str, Any]
    body: str


class ExchangeSpy:
    """A queue of its own bound to Gather's exchange for every routing key: it keeps a copy of each message
    published from its creation on, for a test to read what went over the broker, until `delete` (the
    `exchange_spy` fixture calls it: on a shared platform, no copy may outlive its test)."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.queue = kombu.Queue(
            f"test.spy.{uuid.uuid4().hex[:12]}",
            TOPIC_EXCHANGE,
            routing_key="#",
            durable=False,
            queue_arguments={"x-expires": 600_000},  # gone ten minutes after its last use, should delete not run
        )
        with kombu.Connection(broker_url) as conn:
            self.queue(conn.default_channel).declare()

    def delete(self) -> None:
        with kombu.Connection(self.broker_url) as conn:
            self.queue(conn.default_channel).delete()

    def copies(self) -> list[Copy]:
        """The copies that arrived since the last call."""
        with kombu.Connection(self.broker_url) as conn:
            queue = self.queue(conn.default_channel)
            messages = list(iter(lambda: queue.get(no_ack=True), None))
        return [Copy(dict(m.headers or {}), m.body.decode() if isinstance(m.body, bytes) else m.body) for m in messages]
