"""A real RabbitMQ cluster, really failing: three nodes on this machine, two copies of every worker, a
load of registrations, the node leading the queues stopped (then started again), later the next leader
killed. Every registration still gets its email, once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gather_shared.bus.topology import CONSUMERS
from gather_shared.db import make_engine
from gather_shared.testing import Client, fresh_pg_databases, running_platform, wait_for
from gather_shared.testing.cluster import RabbitCluster
from gather_shared.testing.smtp import Mailbox, smtp_sink
from gather_shared.testing.tiers import declare_every_queue

#: Registrations taken at once (201), each with one email: its confirmation.
AT_ONCE = {"kind": "workshop", "verification": "none", "capacity": None}
#: Registrations made after each step (a node stopped, back, another killed) before the next one.
PER_STEP = 15
SERVICES = ("events", "signup", "notifications")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_sink() as sink:
        yield sink


def gather_queues(cluster: RabbitCluster) -> dict[str, dict[str, Any]]:
    """Gather's queues as a live node sees them."""
    for node in cluster.nodes:
        try:
            return {name: q for name, q in cluster.queues(node).items() if name.startswith("gather.")}
        except RuntimeError:  # that node is down: ask another
            continue
    raise AssertionError("no node answers")


def test_every_registration_gets_its_email_once_while_cluster_nodes_die(
    tmp_path: Path,
    rabbit_cluster: RabbitCluster,
    pg_server_url: str,
    mailbox: Mailbox,
    report: Callable[[str], None],
) -> None:
    cluster = rabbit_cluster
    node_names = sorted(node.name for node in cluster.nodes)
    # What deploy/rabbitmq/definitions.json makes a production broker create at boot.
    declare_every_queue(cluster.nodes[0].url)
    queues = gather_queues(cluster)
    assert queues and all(q["type"] == "quorum" for q in queues.values()), queues
    assert all(sorted(q["members"]) == node_names for q in queues.values()), "each queue on the three nodes"

    with fresh_pg_databases(pg_server_url, SERVICES) as databases:
        with running_platform(
            tmp_path, databases, cluster.url, extra_env={"GATHER_SMTP_URL": mailbox.url}, copies=2
        ) as platform:
            client = Client(platform)
            event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
            wait_for(lambda: client.register(event["id"], email="warmup@example.org").status_code == 201)
            statuses: dict[str, int] = {"warmup@example.org": 201}
            stop = threading.Event()

            def register_steadily() -> None:
                while not stop.is_set():
                    address = f"attendee{len(statuses)}@example.org"
                    statuses[address] = client.register(event["id"], wait=False, email=address).status_code
                    stop.wait(0.1)

            def registrations_grow_by(count: int) -> None:
                target = len(statuses) + count
                wait_for(lambda: len(statuses) >= target, timeout=60, message=f"{count} more registrations")

            load = threading.Thread(target=register_steadily)
            load.start()
            try:
                registrations_grow_by(PER_STEP)
                first = cluster.node_named(str(gather_queues(cluster)["gather.notifications"]["leader"]))
                cluster.stop_app(first)  # stopped: it closes its clients' connections
                registrations_grow_by(PER_STEP)
                for name, url in platform.urls.items():  # the node listed first is down; the others answer
                    assert client.http.get(f"{url}/readyz", timeout=10).status_code == 200, name
                cluster.start_app(first)
                wait_for(
                    lambda: all(sorted(q["online"]) == node_names for q in gather_queues(cluster).values()),
                    timeout=60,
                    message="the restarted node back in every queue",
                )
                registrations_grow_by(PER_STEP)
                second = cluster.node_named(str(gather_queues(cluster)["gather.notifications"]["leader"]))
                assert second != first
                cluster.kill(second)  # crashed: SIGKILL, its clients' connections just go dead
                registrations_grow_by(PER_STEP)
            finally:
                stop.set()
                load.join()

            assert set(statuses.values()) == {201}, Counter(statuses.values())
            wait_for(
                lambda: set(mailbox.recipients()) >= set(statuses),
                timeout=120,
                message="an email for every registration",
            )
            # Both copies of each consumer consume again, each through a node still up.
            wait_for(
                lambda: all(gather_queues(cluster)[q.name]["consumers"] == 2 for q in CONSUMERS.values()),
                message="two consumers on each queue",
            )
            notifications = make_engine(databases["notifications"])
            with notifications.connect() as conn:
                confirmations = conn.execute(
                    sa.text("SELECT status, count(*) FROM notifications WHERE kind = 'signup_confirmed' GROUP BY 1")
                ).all()
            notifications.dispose()
            redelivered = sum(
                platform.tail(name, 100_000).count("already handled") for name in platform.logs if "consumer" in name
            )
            received = mailbox.recipients()
            twice = {address: count for address, count in received.items() if count > 1}
            report(
                f"cluster: {len(statuses)} registrations, {sum(received.values())} emails, "
                f"{len(set(statuses) - set(received))} lost, {len(twice)} sent twice; "
                f"{redelivered} message(s) redelivered by the broker and ignored by a consumer's inbox"
            )
            assert set(received) == set(statuses)
            assert twice == {}, "the sender never crashed: no email may go twice"
            assert len(mailbox.received) == len({message_id for _, message_id in mailbox.received})
            assert dict(confirmations) == {"sent": len(statuses)}, "one notification per registration, sent"
            # Every copy of every process lived through both failures: they reconnected, none crashed.
            assert [name for name, process in platform.processes.items() if process.poll() is not None] == []
