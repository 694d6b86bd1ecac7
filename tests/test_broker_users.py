"""The RabbitMQ users of deploy/rabbitmq/definitions.json, on a real broker: each service may declare, bind,
consume and publish what it owns, and RabbitMQ refuses it everything else (another's queue, a message type
another service sends, a binding key it does not listen to); and the whole platform works with each of its
processes logged in as its own service's user, as docker-compose.yml runs it."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kombu
import pytest
from amqp.exceptions import AccessRefused

from gather_shared import messages
from gather_shared.bus import topology
from gather_shared.testing import (
    ADMIN_TOKEN,
    RATE_LIMITS_OFF,
    REPO,
    SECRET_KEY,
    Client,
    Platform,
    fresh_pg_databases,
    procfile,
    wait_for,
)

pytestmark = pytest.mark.services

DEFINITIONS = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())
SERVICES = [user["name"] for user in DEFINITIONS["users"] if user["name"] != "admin"]


@pytest.fixture
def users(amqp_url: str) -> Iterator[dict[str, str]]:
    """A fresh vhost with every service's user and its permissions from definitions.json; service → URL."""
    parts = urlsplit(amqp_url)
    if not (shutil.which("rabbitmqctl") and parts.hostname in ("127.0.0.1", "localhost")):
        pytest.skip("creating RabbitMQ users needs rabbitmqctl on the broker's machine")
    vhost = f"gather_test_users_{uuid.uuid4().hex[:12]}"
    passwords = {service: secrets.token_urlsafe(16) for service in SERVICES}
    renamed = {
        "vhosts": [{"name": vhost}],
        "users": [{"name": f"{vhost}_{s}", "password": passwords[s], "tags": ""} for s in SERVICES],
        "permissions": [
            {"user": parts.username or "guest", "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"},
            *(
                p | {"user": f"{vhost}_{p['user']}", "vhost": vhost}
                for p in DEFINITIONS["permissions"]
                if p["user"] in SERVICES
            ),
        ],
        "topic_permissions": [
            p | {"user": f"{vhost}_{p['user']}", "vhost": vhost} for p in DEFINITIONS["topic_permissions"]
        ],
        # The exchange, queues and bindings the broker creates at boot, before any service starts.
        **{key: [item | {"vhost": vhost} for item in DEFINITIONS[key]] for key in ("exchanges", "queues", "bindings")},
    }
    host = parts.netloc.split("@")[-1]
    urls = {
        s: urlunsplit(parts._replace(netloc=f"{vhost}_{s}:{passwords[s]}@{host}", path=f"/{vhost}")) for s in SERVICES
    }
    try:
        subprocess.run(["rabbitmqctl", "-q", "import_definitions"], input=json.dumps(renamed), text=True, check=True)
        yield urls
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
        for service in SERVICES:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", f"{vhost}_{service}"], capture_output=True)


def allowed(url: str, action: Callable[[Any], Any]) -> bool:
    """Whether RabbitMQ lets the user of `url` do `action(channel)`; a refusal closes the channel, so each
    try has a connection of its own. Publishes wait for the broker's confirm, so a refusal shows."""
    with kombu.Connection(url, transport_options={"confirm_publish": True}) as conn:
        try:
            action(conn.default_channel)
        except AccessRefused:
            return False
    return True


def publish(exchange: str, routing_key: str) -> Callable[[Any], None]:
    def action(channel: Any) -> None:
        kombu.Producer(channel).publish(
            "{}", exchange=exchange, routing_key=routing_key, content_type="application/json"
        )

    return action


def declare_queues(q: topology.ConsumerQueue) -> Callable[[Any], None]:
    """What the consumer of `q` declares when it connects (the definitions created them already: the same
    arguments, or RabbitMQ would refuse)."""
    return lambda channel: topology.declare_topology(channel.connection.client, q)


def test_each_service_may_do_what_it_owns_and_nothing_else(users: dict[str, str]) -> None:
    for service, url in users.items():
        own = topology.CONSUMERS.get(service)
        others = [q for q in topology.CONSUMERS.values() if q.service != service]
        assert allowed(url, lambda ch: topology.declare_topology(ch.connection.client)), service  # a relay

        for type_ in messages.SCHEMAS:
            sends = topology.sender(type_) == f"/gather/{service}"
            assert allowed(url, publish(topology.EXCHANGE, type_)) == sends, f"{service} publishing {type_}"

        if own is not None:
            assert allowed(url, declare_queues(own)), service
            assert allowed(url, lambda ch, own=own: ch.basic_get(own.name)), service
            assert allowed(url, publish("", own.retry_queue(topology.RETRY_DELAYS_SECONDS[0]))), service
            assert allowed(url, publish("", own.dlq)), service
            foreign_keys = {key for q in others for key in q.bindings} - set(own.bindings)
            for key in foreign_keys | {"#"}:
                assert not allowed(url, lambda ch, own=own, key=key: ch.queue_bind(own.name, topology.EXCHANGE, key))
        for q in others:
            assert not allowed(url, lambda ch, q=q: ch.basic_get(q.name)), f"{service} reading {q.name}"
            assert not allowed(url, declare_queues(q)), f"{service} declaring {q.name}"
            assert not allowed(url, lambda ch, q=q: ch.queue_purge(q.dlq)), f"{service} purging {q.dlq}"


@pytest.mark.slow
def test_the_platform_works_with_each_service_logged_in_as_its_own_user(
    users: dict[str, str], pg_server_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    env |= {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    env |= RATE_LIMITS_OFF
    with contextlib.ExitStack() as stack:
        services = {name.split("-")[0] for name in procfile()}
        databases = stack.enter_context(fresh_pg_databases(pg_server_url, services))
        platform = Platform(workdir=tmp_path, env=env, database_urls=databases)
        stack.callback(platform.stop)
        try:
            for name in procfile():
                platform.env["GATHER_BROKER_URL"] = users[name.split("-")[0]]
                platform.start(name)
            platform.wait_ready()
            client = Client(platform)
            event = client.published_event(client.organizer()["api_key"], title="Carers' coffee morning")
            # Each hop is another user: events' relay publishes, signup's consumer learns of the event,
            # signup's relay announces the registration, notifications' consumer and sender write the email.
            response = client.register(event["id"], display_name="Robin", email="robin@example.org")
            assert response.status_code < 300, response.text
            wait_for(lambda: list((tmp_path / "var/outbox/email").glob("*.eml")), message="an email to Robin")
        except BaseException:
            print(platform.all_logs())
            raise
        assert "ACCESS_REFUSED" not in platform.all_logs()
