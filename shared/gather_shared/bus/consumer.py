"""The consumer: one service's queue → its handlers, in batches, acked only after their commit.

Nothing blocks a queue: an invalid message (or one from a source that may not send its type) goes to
`<queue>.dlq` at once; a failing handler is retried after growing delays (RETRY_DELAYS_SECONDS), then
dead-lettered. Dead letters expire after DEAD_LETTER_TTL_SECONDS; those about an erased attendee go when
the erasure is handled (FORGET_ON)."""

from __future__ import annotations

import heapq
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import kombu
from kombu.mixins import ConsumerMixin
from marshmallow import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import envelope, logs, messages, metrics
from gather_shared.bus.inbox import Handler, Message, handle_batch, received
from gather_shared.bus.topology import (
    DEAD_LETTER_TTL_SECONDS,
    FORGET_ON,
    RETRY_DELAYS_SECONDS,
    ConsumerQueue,
    declare_topology,
    main_queue,
)
from gather_shared.bus.transport import connect, drop_expired, drop_mentioning, is_amqp, mentions

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-gather-attempt"
ERROR_HEADER = "x-gather-error"
#: The consumer handles its messages in batches, one transaction (one commit) per batch. A batch ends
#: when the broker had nothing more for it within BATCH_WAIT_SECONDS, when it holds BATCH_MAX messages,
#: or when its first message has waited BATCH_MAX_AGE_SECONDS: a stream of messages shares few commits,
#: and a lone message waits only BATCH_WAIT_SECONDS.
BATCH_WAIT_SECONDS = 0.005
BATCH_MAX_AGE_SECONDS = 0.05
BATCH_MAX = 50
#: How long an idle consumer (no batch pending) waits for the broker before it looks at its timers and at
#: whether it should stop: the broker pushes messages, so waiting longer costs no latency, and an idle
#: consumer wakes once a second instead of 200 times (docs/benchmarks.md, "Idle").
IDLE_WAIT_SECONDS = 1.0
#: Unacked messages the broker may send a consumer: two batches, so that the next batch is already
#: arriving while one is handled (with one batch, each waited for the broker after the previous ack).
PREFETCH = 2 * BATCH_MAX
#: kombu's default retry policy retries forever; a consumer must rather fail and be redelivered.
PUBLISH_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.5, "interval_step": 1, "interval_max": 5}
#: How often the consumer on the embedded transport (which has no TTL) deletes its expired dead letters.
EXPIRE_EVERY_SECONDS = 60.0
#: How often the consumer asks the broker how many messages wait in its queue (its lag, a metric).
LAG_EVERY_SECONDS = 15.0


@dataclass
class _Pending:
    kombu_message: kombu.Message
    body: str
    headers: dict[str, Any]
    message: Message


@dataclass(order=True)
class _Retry:
    due: float
    body: str = field(compare=False)
    headers: dict[str, Any] = field(compare=False)


class Consumer(ConsumerMixin):
    """Consumes one service's queue and calls the handler registered for each message type.

    Runs until `should_stop` is set; reconnects by itself when the broker goes away (ConsumerMixin)."""

    def __init__(
        self,
        broker_url: str,
        queue: ConsumerQueue,
        sessions: sessionmaker[Session],
        handlers: dict[str, Handler],
        retry_delays: tuple[int, ...] = RETRY_DELAYS_SECONDS,
        dead_letter_ttl: float = DEAD_LETTER_TTL_SECONDS,
    ) -> None:
        unknown = set(handlers) - set(messages.SCHEMAS)
        if unknown:
            raise ValueError(f"handlers for unknown message types: {sorted(unknown)}")
        self.connection = connect(broker_url)
        # Copies (retries, dead letters) go out on a connection of their own, with confirms: a copy must
        # be safe on the broker before the original is acked, and waiting for that confirm on the
        # consuming connection would deliver the next message in the middle of this one.
        self._publisher = connect(broker_url, confirm_publish=True)
        self.queue = queue
        self.sessions = sessions
        self.handlers = handlers
        self.retry_delays = retry_delays
        self.dead_letter_ttl = dead_letter_ttl
        self._local_retries: list[_Retry] = []  # the embedded transport has no TTL: retries wait here
        self._expire_at = 0.0  # when the embedded transport's expired dead letters go next
        self._lag_at = 0.0  # when the consumer next asks for its queue's length
        self._batch: list[_Pending] = []  # received, not yet handled nor acked
        self._batch_started = 0.0
        self._received = False  # whether a message arrived since the last iteration

    def consume(self, *args: Any, **kwargs: Any) -> Iterator[None]:
        """kombu's ConsumerMixin.consume, but the wait for the broker depends on the batch: with messages
        pending, BATCH_WAIT_SECONDS (kombu delivers one per iteration, and an iteration that got none ends
        the batch); without, up to IDLE_WAIT_SECONDS, or until the next timer is due."""
        with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                try:
                    conn.drain_events(timeout=self._wait_seconds())
                except TimeoutError:  # socket.timeout: nothing arrived
                    conn.heartbeat_check()
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    yield

    def _wait_seconds(self) -> float:
        if self._batch:
            return BATCH_WAIT_SECONDS
        timers = [self._lag_at] + ([self._local_retries[0].due] if self._local_retries else [])
        if not is_amqp(self.connection):
            timers.append(self._expire_at)
        return max(BATCH_WAIT_SECONDS, min(IDLE_WAIT_SECONDS, min(timers) - time.monotonic()))

    def on_connection_revived(self) -> None:
        # Messages received on the lost connection were never acked: the broker delivers them again.
        self._batch = []

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[kombu.Consumer]:
        # kombu calls this on every (re)connection, right after on_connection_revived.
        declare_topology(self.connection, self.queue)
        return [consumer_cls(queues=[main_queue(self.queue)], on_message=self.on_message, prefetch_count=PREFETCH)]

    def on_iteration(self) -> None:
        now = time.monotonic()
        if self._batch and (not self._received or now - self._batch_started >= BATCH_MAX_AGE_SECONDS):
            self._flush()
        self._received = False
        while self._local_retries and self._local_retries[0].due <= now:
            retry = heapq.heappop(self._local_retries)
            self._publish_copy(retry.body, self.queue.name, retry.headers)
        if now >= self._expire_at and not is_amqp(self.connection):
            drop_expired(self._publisher, self.queue.dlq, self.dead_letter_ttl)
            self._expire_at = now + min(EXPIRE_EVERY_SECONDS, self.dead_letter_ttl)
        if now >= self._lag_at:
            self._lag_at = now + LAG_EVERY_SECONDS
            self._measure_lag()

    def _measure_lag(self) -> None:
        try:
            waiting = self._publisher.default_channel.queue_declare(queue=self.queue.name, passive=True).message_count
        except Exception:  # a metric: the next look may succeed; consuming goes on
            log.debug("consumer: could not read the length of %s", self.queue.name, exc_info=True)
            return
        metrics.CONSUMER_LAG.labels(self.queue.name).set(waiting)

    def on_message(self, message: kombu.Message) -> None:
        body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else message.body
        headers = dict(message.headers or {})
        try:
            message_in = received(body)
        except ValidationError as exc:
            log.error("consumer: invalid message dead-lettered: %s", exc.messages)
            metrics.MESSAGES.labels("invalid", "dead_lettered").inc()
            self._dead_letter(body, headers | {ERROR_HEADER: json.dumps(exc.messages)[:1000]})
            message.ack()
            return
        self._received = True
        if not self._batch:
            self._batch_started = time.monotonic()
        self._batch.append(_Pending(message, body, headers, message_in))
        if len(self._batch) >= BATCH_MAX:
            self._flush()

    def _flush(self) -> None:
        """Handle the buffered messages in one transaction, then ack them: one commit per batch rather
        than per message, and still no ack before the commit."""
        batch, self._batch = self._batch, []
        failed = handle_batch(self.sessions, self.handlers, [pending.message for pending in batch])
        for pending in batch:
            error = failed.get(pending.message.id)
            if error is None:
                metrics.MESSAGES.labels(pending.message.type, "handled").inc()
            else:
                with logs.message_context(pending.message.id, pending.message.correlation_id):
                    self._retry_or_dead_letter(pending.message.type, pending.body, pending.headers, error)
            pending.kombu_message.ack()
        self._forget([pending.message for pending in batch if pending.message.id not in failed])

    def _forget(self, handled: list[Message]) -> None:
        """Drop the retries and dead letters that mention what a handled message asked to forget
        (FORGET_ON): an erased registration's earlier messages carry its contact details."""
        needles = {str(m.data[FORGET_ON[m.type]]) for m in handled if m.type in FORGET_ON}
        if not needles:
            return
        self._local_retries = [r for r in self._local_retries if not mentions(r.body, needles)]
        heapq.heapify(self._local_retries)
        for queue in [self.queue.dlq, *(self.queue.retry_queue(delay) for delay in self.retry_delays)]:
            try:  # one pass per queue for the whole batch: a queue of dead letters may be long
                dropped = drop_mentioning(self._publisher, queue, needles)
            except Exception:  # the erasure stands; the copies expire (DEAD_LETTER_TTL_SECONDS)
                log.exception("consumer: could not look through %s for messages to forget", queue)
                continue
            if dropped:
                log.info("consumer: %d message(s) about erased registrations dropped from %s", dropped, queue)

    def _retry_or_dead_letter(self, type_: str, body: str, headers: dict[str, Any], error: str) -> None:
        attempt = int(headers.get(ATTEMPT_HEADER, 0)) + 1
        headers = headers | {ATTEMPT_HEADER: attempt, ERROR_HEADER: error[:1000]}
        if attempt > len(self.retry_delays):
            metrics.MESSAGES.labels(type_, "dead_lettered").inc()
            log.error("consumer: giving up after %d attempts; dead-lettered", attempt)
            self._dead_letter(body, headers)
            return
        delay = self.retry_delays[attempt - 1]
        metrics.MESSAGES.labels(type_, "retried").inc()
        log.warning("consumer: retry %d in %ss", attempt, delay)
        if is_amqp(self.connection):
            self._publish_copy(body, self.queue.retry_queue(delay), headers)
        else:
            heapq.heappush(self._local_retries, _Retry(time.monotonic() + delay, body, headers))

    def _dead_letter(self, body: str, headers: dict[str, Any]) -> None:
        # A per-message TTL: RabbitMQ drops the copy once it expires, whatever the queue was declared with.
        self._publish_copy(body, self.queue.dlq, headers, expiration=self.dead_letter_ttl)

    def _publish_copy(
        self, body: str, queue_name: str, headers: dict[str, Any], expiration: float | None = None
    ) -> None:
        producer = kombu.Producer(self._publisher.default_channel)
        producer.publish(
            body,
            exchange="",
            routing_key=queue_name,
            headers=headers,
            content_type=envelope.CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=2,
            expiration=expiration,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
