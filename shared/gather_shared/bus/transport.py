"""Connections to the broker: RabbitMQ in production, kombu's `filesystem://` transport in the embedded
default, made safe for several processes sharing one folder."""

from __future__ import annotations

import base64
import fcntl
import os
import time
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import kombu
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from gather_shared.config import VAR_DIR


class _AtomicFilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel, without its two races between processes (both seen here as a
    JSONDecodeError that stopped a process): messages and exchange tables read half-written."""

    # kombu's own base classes disagree on the argument's name (`message`, `payload`); it passes it by position.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # Write under a name no reader matches, then rename: a rename is atomic.
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        path = Path(self.data_folder_out) / name
        partial = path.with_name(name + ".partial")
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        # kombu creates the exchange file and locks it in two steps, so another process binding at the
        # same moment could read it empty (seen here as a JSONDecodeError at start-up). Open-or-create,
        # then lock, then read; an empty file is an empty table.
        path = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0) as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            content = f.read()
            table = [filesystem.exchange_queue_t(*q) for q in (loads(bytes_to_str(content)) if content else [])]
            if entry not in table:
                table.insert(0, entry)
                f.seek(0)
                f.truncate()
                f.write(str_to_bytes(dumps(table)))

    def get_table(self, exchange: str) -> list[Any]:
        try:
            return super().get_table(exchange)
        except ValueError:  # created by a binder that has not written it yet: nothing is bound so far
            return []


class _AtomicFilesystemTransport(filesystem.Transport):
    Channel = _AtomicFilesystemChannel


FILESYSTEM_POLL_SECONDS = 0.1


def connect(url: str, **transport_options: Any) -> kombu.Connection:
    if url.startswith("filesystem://"):
        # Absolute: a process (or a test) that changes directory later must keep the same broker.
        data, control = (VAR_DIR / "broker" / "data").resolve(), (VAR_DIR / "broker" / "control").resolve()
        for folder in (data, control):
            folder.mkdir(parents=True, exist_ok=True)
        transport_options |= {
            # How often an idle consumer looks in the folder (kombu's default: once a second): the
            # embedded default polls, gently; RabbitMQ pushes.
            "polling_interval": FILESYSTEM_POLL_SECONDS,
            "data_folder_in": str(data),
            "data_folder_out": str(data),
            "control_folder": str(control),
        }
        return kombu.Connection(
            url, transport=_AtomicFilesystemTransport, transport_options=transport_options, connect_timeout=5
        )
    return kombu.Connection(url, transport_options=transport_options, connect_timeout=5)


def is_amqp(conn: kombu.Connection) -> bool:
    return conn.transport.driver_type == "amqp"


def check(url: str) -> None:
    """Raise if the broker does not answer (for /readyz): no node of a cluster answers."""
    with connect(url) as conn:
        conn.ensure_connection(max_retries=every_node_once(conn), timeout=3)


def every_node_once(conn: kombu.Connection) -> int:
    """The retries in which `conn.ensure_connection` tries each node of its failover list (GATHER_BROKER_URL
    may list a cluster's nodes, `;`-separated) once after the first: kombu moves to the next node at each
    failure, at once within a round of the list."""
    return max(len(conn.alt), 1)


def drop_expired(conn: kombu.Connection, queue: str, ttl_seconds: float) -> int:
    """Delete the messages of `queue` older than `ttl_seconds` from a filesystem broker, which knows no
    TTL of its own (RabbitMQ expires them by itself). Returns how many went."""
    options: dict[str, Any] = conn.transport_options or {}
    folder = Path(options["data_folder_in"])
    oldest = time.time() - ttl_seconds
    dropped = 0
    for path in folder.glob(f"*.{queue}.msg"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
                dropped += 1
        except FileNotFoundError:  # taken by a reader meanwhile
            continue
    return dropped


def drop_mentioning(conn: kombu.Connection, queue: str, needles: Collection[str]) -> int:
    """Delete from `queue` every message whose body contains one of `needles` (say, erased registrations'
    ids), in one pass however many; the others stay as they were. Returns how many went."""
    if is_amqp(conn):
        return _drop_mentioning_amqp(conn, queue, needles)
    options: dict[str, Any] = conn.transport_options or {}
    dropped = 0
    for path in Path(options["data_folder_in"]).glob(f"*.{queue}.msg"):
        try:
            if mentions(stored_body(path.read_bytes()), needles):
                path.unlink()
                dropped += 1
        except FileNotFoundError:  # taken by a reader meanwhile
            continue
    return dropped


def mentions(body: str, needles: Collection[str]) -> bool:
    """Whether a message's body names one of `needles` (drop_mentioning's rule, the consumer's in memory too)."""
    return any(needle in body for needle in needles)


def stored_body(raw: bytes) -> str:
    """The body of a message as kombu's filesystem transport stores it (base64 inside a JSON payload)."""
    try:
        payload = loads(bytes_to_str(raw))
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
    except (ValueError, KeyError, TypeError):
        return bytes_to_str(raw)
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def _drop_mentioning_amqp(conn: kombu.Connection, queue: str, needles: Collection[str]) -> int:
    # Every message is taken without an ack, and those to keep are given back together when the channel
    # closes (one given back at once would be taken again): they keep their place and their expiry. An
    # empty queue (the dead letters, most of the time) costs one look, not a pass.
    channel = conn.channel()
    dropped = 0
    try:
        if not channel.queue_declare(queue=queue, passive=True).message_count:
            return 0
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            body = message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else str(message.body)
            if mentions(body, needles):
                channel.basic_ack(message.delivery_tag)
                dropped += 1
    finally:
        channel.close()
    return dropped
