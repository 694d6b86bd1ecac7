"""The broker topology, described once: the exchange, and for each consuming service its queue, the
routing keys it binds, its retry (delay) queues and its dead-letter queue.

Every process declares all of it at start-up: kombu's `filesystem://` transport routes topic keys
across processes only when each has declared the exchange, and on RabbitMQ re-declaring is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

EXCHANGE = "gather.events"

#: Delays before the 1st, 2nd, 3rd retry of a failed handler; after the last, the message is dead-lettered.
RETRY_DELAYS_SECONDS: tuple[int, ...] = (1, 5, 30)

#: A message redelivered this often without being settled (say, it crashes the consumer process every
#: time) is dead-lettered by RabbitMQ itself.
DELIVERY_LIMIT = 10


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
}
