"""The broker topology, described once: the exchange; for each consuming service its queue, the routing
keys it binds, its retry (delay) queues and its dead-letter queue; and who may send what.

Every consumer's queues must exist before anything is published, or a consumer would miss what was sent
before it first started. On RabbitMQ the broker creates them all at boot (`broker_definitions`, kept in
deploy/rabbitmq/definitions.json), and each service's user may create only its own queues, so a process
declares the exchange and its own queues only. kombu's `filesystem://` transport has no users and routes a
topic key across processes only when each has declared everything: there every process declares it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kombu

EXCHANGE = "gather.events"
TOPIC_EXCHANGE = kombu.Exchange(EXCHANGE, type="topic", durable=True)

#: Delays before the 1st, 2nd, 3rd retry of a failed handler; after the last, the message is dead-lettered.
RETRY_DELAYS_SECONDS: tuple[int, ...] = (1, 5, 30)

#: A message redelivered this often without being settled (say, it crashes the consumer process every
#: time) is dead-lettered by RabbitMQ itself.
DELIVERY_LIMIT = 10

#: How long a dead letter is kept: a week, for an operator alerted by the queue's length to read it and
#: move it back after a fix; after that it goes, with the contact details it may carry. Each dead letter
#: the consumer makes carries it (per-message TTL: no queue argument changes, so queues declared before
#: keep working); the `gather-dead-letters` policy in deploy/rabbitmq/definitions.json applies the same
#: to every `.dlq` (RabbitMQ's own dead letters included); the embedded transport's consumer deletes
#: older files itself.
DEAD_LETTER_TTL_SECONDS = 7 * 24 * 3600

#: The delivery limit the `gather-dead-letters` policy gives every `.dlq`: far beyond reach. Reading a
#: `.dlq` takes each message and gives it back (an erasure's search, `gather-admin dead-letters`), and
#: RabbitMQ 4.0 to 4.2 count that towards a quorum queue's delivery limit, 20 unless set, dropping a
#: message past it (a `.dlq` has nowhere to dead-letter to): twenty erasures would have emptied it.
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000

#: Messages that ask a consumer to forget one thing, by the field of their data that names it: once such a
#: message is handled, the consumer drops from its retry and dead-letter queues every message that
#: mentions it (consumer.Consumer._forget). So the contact details of an erased attendee do not wait there
#: for DEAD_LETTER_TTL_SECONDS; a dead letter that does not name the registration (an unreadable body) does.
FORGET_ON: dict[str, str] = {"signup.erased.v1": "signup_id"}

#: Who may send what: the CloudEvents `source` a message type must come from, by the type's first word.
#: A consumer dead-letters a message from any other source as it does an invalid one.
SENDERS: dict[str, str] = {"organizer": "/gather/events", "event": "/gather/events", "signup": "/gather/signup"}


def sender(type_: str) -> str | None:
    """The one source that may send `type_` (None: nobody may)."""
    return SENDERS.get(type_.split(".", 1)[0])


@dataclass(frozen=True)
class ConsumerQueue:
    service: str
    bindings: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"gather.{self.service}"

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, delay_seconds: int) -> str:
        return f"{self.name}.retry.{delay_seconds}s"


#: Who listens to what. The handlers themselves are in each service's `handlers.py`.
CONSUMERS: dict[str, ConsumerQueue] = {
    "signup": ConsumerQueue("signup", ("organizer.#", "event.#")),
    "notifications": ConsumerQueue("notifications", ("organizer.#", "event.#", "signup.#")),
    # The attendee pages keep their own copy of listed events and of their seat counts.
    "pages": ConsumerQueue("pages", ("event.#", "signup.availability_changed.v1")),
}


# --- declaring it -----------------------------------------------------------------------------------


def _quorum(**arguments: Any) -> dict[str, Any]:
    # Quorum queues replicate across a RabbitMQ cluster; other transports ignore the arguments.
    return {"x-queue-type": "quorum", **arguments}


def main_queue(q: ConsumerQueue) -> kombu.Queue:
    return kombu.Queue(
        q.name,
        TOPIC_EXCHANGE,
        bindings=[kombu.binding(TOPIC_EXCHANGE, routing_key=key) for key in q.bindings],
        durable=True,
        queue_arguments=_quorum(
            **{
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": q.dlq,
                "x-delivery-limit": DELIVERY_LIMIT,
            }
        ),
    )


def _plain_queue(name: str, **arguments: Any) -> kombu.Queue:
    return kombu.Queue(name, kombu.Exchange(""), routing_key=name, durable=True, queue_arguments=_quorum(**arguments))


def queues(q: ConsumerQueue) -> list[kombu.Queue]:
    """A consumer's queue with its bindings, its delay queues and its dead-letter queue."""
    # A delay queue: nobody consumes it; RabbitMQ dead-letters each message back to the main queue when
    # its TTL expires.
    retry = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q.name}
    return [
        main_queue(q),
        *(
            _plain_queue(q.retry_queue(delay), **retry, **{"x-message-ttl": delay * 1000})
            for delay in RETRY_DELAYS_SECONDS
        ),
        _plain_queue(q.dlq),
    ]


def declare_topology(conn: kombu.Connection, own: ConsumerQueue | None = None) -> None:
    """Declare the exchange and the queues of `own` (the queue this process consumes, if any); on the
    embedded transport, every consumer's queues (see the module's docstring)."""
    channel = conn.default_channel
    TOPIC_EXCHANGE(channel).declare()
    for q in CONSUMERS.values():
        if q == own or conn.transport.driver_type != "amqp":
            for queue in queues(q):
                queue(channel).declare()


def broker_definitions(vhost: str) -> dict[str, list[dict[str, Any]]]:
    """The exchange, every consumer's queues and their bindings, in RabbitMQ's definitions format: what the
    broker creates at boot (deploy/rabbitmq/definitions.json; tests/test_deploy.py keeps them equal)."""
    return {
        "exchanges": [
            {
                "name": EXCHANGE,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                # kombu sets a Queue's attributes from a table at run time; as_dict() reads them typed.
                "arguments": queue.as_dict()["queue_arguments"],
            }
            for q in CONSUMERS.values()
            for queue in queues(q)
        ],
        "bindings": [
            {
                "source": EXCHANGE,
                "vhost": vhost,
                "destination": q.name,
                "destination_type": "queue",
                "routing_key": key,
                "arguments": {},
            }
            for q in CONSUMERS.values()
            for key in q.bindings
        ],
    }
