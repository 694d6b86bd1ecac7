"""Dead letters, for the operator (`python -m gather_shared admin dead-letters …`): read a `<queue>.dlq`
without taking anything from it, and move dead letters back to their queue (replay) or delete them (purge).

A dead letter holds a whole message, and a registration's message holds who registered for what: a name,
an email address, a phone number, a reason. What this module hands out for display (`DeadLetter`) carries
none of it: the data's field names with only the values that cannot name anyone (ids, times, yes/no,
small numbers), and the error with anything contact-like blotted out (`redact`). The body itself stays
inside, for `take` alone to send back. A dead letter may be a forgery or garbage (that is often why it is
there), so even its envelope's type, source, id and time are shown only when they look like Gather's own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import kombu
from marshmallow import Schema, fields

from gather_shared import envelope, messages
from gather_shared.bus.consumer import ATTEMPT_HEADER, ERROR_HEADER, PUBLISH_RETRY_POLICY
from gather_shared.bus.topology import SENDERS
from gather_shared.bus.transport import connect, is_amqp, stored_body

#: What is shown in place of a value that may name someone.
HIDDEN = "…"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DATETIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
_SAFE_TEXT = re.compile(f"{_UUID}|{_DATETIME}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _field_names(schema: Schema) -> set[str]:
    """Every field name a message schema declares, its nested schemas' included (a list's too)."""
    names = set()
    for name, declared in schema.fields.items():
        names.add(name)
        if isinstance(declared, fields.List):
            declared = declared.inner
        if isinstance(declared, fields.Nested):
            names |= _field_names(declared.schema)
    return names


#: The field names a message may have: a data key outside them is shown as HIDDEN (a forger chooses keys).
_FIELDS = frozenset(name for schema in messages.SCHEMAS.values() for name in _field_names(schema()))
#: The headers Gather and RabbitMQ put on a dead letter: any other header's name is shown as HIDDEN.
_HEADERS = frozenset(
    {
        ATTEMPT_HEADER,
        ERROR_HEADER,
        "traceparent",
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)
#: Why RabbitMQ itself dead-letters a message; any other reason is shown as HIDDEN.
_BROKER_REASONS = frozenset({"rejected", "expired", "maxlen", "delivery_limit"})
#: Numbers up to this are shown (a capacity, a version, a position); a longer one may be a phone number.
_SAFE_NUMBER = 1_000_000

#: In an error's text: ids and times are kept; email addresses, anything number-like long enough to be a
#: phone number, quoted text (exception messages quote the value they choke on) and PostgreSQL's
#: `Key (email)=(robin@example.org)` are not.
_IN_TEXT = re.compile(
    rf"(?P<keep>{_UUID}|{_DATETIME})"
    r"|(?P<email>[^\s@'\"<>(),;:\[\]]+@[^\s@'\"<>(),;:\[\]]+)"
    r"|(?P<number>\+?\d[\d ().-]{5,}\d)"
    r"|(?P<quoted>'[^']*'|\"[^\"]*\")"
    r"|(?P<value>=\([^)]*\))"
)


def redact(text: str, quoted: bool = True) -> str:
    """`text` with contact-like parts replaced by HIDDEN (and quoted text too, unless `quoted` is False)."""

    def replace(match: re.Match[str]) -> str:
        if match.lastgroup == "keep" or (match.lastgroup == "quoted" and not quoted):
            return match.group()
        if match.lastgroup == "quoted":
            return match.group()[0] + HIDDEN + match.group()[0]
        if match.lastgroup == "value":
            return f"=({HIDDEN})"
        return HIDDEN

    return _IN_TEXT.sub(replace, text)


def redact_error(error: str) -> str:
    """The consumer's x-gather-error header, redacted: a validation error is JSON ({field: [messages]},
    whose field names may be a forger's), a handler's error is an exception's text."""
    parsed = _json_or_none(error)
    if parsed is None:
        return redact(error)
    return json.dumps(_redact_json(parsed), ensure_ascii=False)


def _json_or_none(text: str | bytes) -> Any:
    """`text` read as JSON, or None: a dead letter may be anything, nested deeper than the parser recurses
    included (the consumer dead-letters those as not JSON)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k if _NAME.fullmatch(str(k)) else HIDDEN): _redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, str):
        return redact(value, quoted=False)  # marshmallow's own messages; the JSON quotes are not the value's
    return value


def shape(value: Any) -> Any:
    """`value` (a message's data) with every value that may name someone replaced by HIDDEN: what is kept
    is field names, ids, times, yes/no, null and small numbers."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if abs(value) < _SAFE_NUMBER else HIDDEN
    if isinstance(value, str):
        return value if _SAFE_TEXT.fullmatch(value) else HIDDEN
    if isinstance(value, dict):
        return {(k if k in _FIELDS else HIDDEN): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        # No message has a list of numbers: a number split into a list's small ones may be a phone's.
        return [HIDDEN if isinstance(v, int | float) and not isinstance(v, bool) else shape(v) for v in value]
    return HIDDEN


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter, fit to show: nothing in it names anyone (see the module's docstring)."""

    queue: str
    #: How the operator names it: the message's id, or `body-<hash>` for one without a readable id.
    key: str
    type: str | None
    source: str | None
    time: str | None
    #: The consumer's attempts at handling it (None: dead-lettered at once, or by RabbitMQ itself).
    attempts: int | None
    #: Why it is here, redacted.
    error: str | None
    #: The data, shaped (`shape`).
    data: Any
    header_names: tuple[str, ...]
    _body: str = field(repr=False, compare=False)
    _headers: dict[str, Any] = field(repr=False, compare=False)


def _dead_letter(queue: str, body: str, headers: dict[str, Any]) -> DeadLetter:
    parsed = _json_or_none(body)
    env: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    id_ = env.get("id")
    key = id_ if isinstance(id_, str) and re.fullmatch(_UUID, id_) else f"body-{_digest(body)}"
    type_ = env.get("type") if env.get("type") in messages.SCHEMAS else None
    source = env.get("source") if env.get("source") in SENDERS.values() else None
    time = env.get("time") if isinstance(env.get("time"), str) and _is_datetime(env["time"]) else None
    attempt = headers.get(ATTEMPT_HEADER)
    error = headers.get(ERROR_HEADER)
    deaths = headers.get("x-death")
    if error is None and isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        error = f"dead-lettered by the broker: {reason if reason in _BROKER_REASONS else HIDDEN}"
    return DeadLetter(
        queue=queue,
        key=key,
        type=type_,
        source=source,
        time=time,
        attempts=int(attempt) if isinstance(attempt, int | str) and str(attempt).isdigit() else None,
        error=redact_error(str(error)) if error is not None else None,
        data=shape(env["data"]) if "data" in env else None,
        header_names=tuple(sorted(k if k in _HEADERS else HIDDEN for k in headers)),
        _body=body,
        _headers=headers,
    )


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()[:16]


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- reading and moving them ---------------------------------------------------------------------------


def peek(broker_url: str, queue: str) -> list[DeadLetter]:
    """The dead letters of `queue`, oldest first, left where they are."""
    with connect(broker_url) as conn:
        if is_amqp(conn):
            # Each is taken without an ack and all are given back when the channel closes: they keep
            # their place and their expiry (as transport._drop_mentioning_amqp does).
            channel = conn.channel()
            try:
                return [_dead_letter(queue, body, headers) for _, body, headers in _amqp_messages(channel, queue)]
            finally:
                channel.close()
        return [_dead_letter(queue, body, headers) for _, body, headers in _files(conn, queue)]


def take(broker_url: str, queue: str, keys: set[str] | None, replay_to: str | None) -> list[DeadLetter]:
    """Remove from `queue` the dead letters whose key is in `keys` (all of them: None) and return them;
    with `replay_to`, each is first published to that queue (with the broker's confirm), fresh: without
    the consumer's attempt count and error, so it has every retry again. A crash between the two leaves
    it in both queues: replaying it again is harmless, the consumer's inbox ignores what it handled."""
    taken: list[DeadLetter] = []
    with connect(broker_url) as conn, connect(broker_url, confirm_publish=True) as publisher:
        producer = kombu.Producer(publisher.default_channel)

        def move(body: str, headers: dict[str, Any]) -> bool:
            letter = _dead_letter(queue, body, headers)
            if keys is not None and letter.key not in keys:
                return False
            if replay_to is not None:
                producer.publish(
                    body,
                    exchange="",
                    routing_key=replay_to,
                    headers=_fresh(headers),
                    content_type=envelope.CONTENT_TYPE,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=True,
                    retry_policy=PUBLISH_RETRY_POLICY,
                )
            taken.append(letter)
            return True

        if is_amqp(conn):
            channel = conn.channel()
            try:
                for tag, body, headers in _amqp_messages(channel, queue):
                    if move(body, headers):
                        channel.basic_ack(tag)
            finally:
                channel.close()  # gives back the others
        else:
            for path, body, headers in _files(conn, queue):
                if move(body, headers):
                    path.unlink(missing_ok=True)  # gone meanwhile: expired by the consumer
    return taken


def _fresh(headers: dict[str, Any]) -> dict[str, Any]:
    """A dead letter's headers without what its dead-lettering added (its trace context stays)."""
    dropped = {ATTEMPT_HEADER, ERROR_HEADER, "x-death", "x-delivery-count"}
    return {
        k: v for k, v in headers.items() if k not in dropped and not k.startswith(("x-first-death", "x-last-death"))
    }


def _amqp_messages(channel: Any, queue: str) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """Every message of `queue`, taken without an ack: (delivery tag, body, headers)."""
    while (message := channel.basic_get(queue, no_ack=False)) is not None:
        body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else str(message.body)
        yield message.delivery_tag, body, dict(message.headers or {})


def _files(conn: kombu.Connection, queue: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """Every message of `queue` on the filesystem transport, oldest first: (file, body, headers)."""
    options: dict[str, Any] = conn.transport_options or {}
    paths = []
    for path in Path(options["data_folder_in"]).glob(f"*.{queue}.msg"):
        try:
            paths.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # taken meanwhile
            continue
    for _, path in sorted(paths):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        payload = _json_or_none(raw)
        headers = (payload.get("headers") or {}) if isinstance(payload, dict) else {}
        yield path, stored_body(raw), headers
