"""`Idempotency-Key` on registration: the same key with the same body within 24 hours gets the first
answer again and creates nothing; with a different body, 422.

Records are looked up under the event's lock (seats.lock_event), so two requests racing with one key
are serialised like any registration: the second finds the first's record.

The first answer holds the manage token, which the service otherwise stores only hashed. To replay it
without keeping it in the clear, the token is sealed with the key itself: XOR with HMAC-SHA256(key, …),
a one-time pad from a pseudo-random function keyed by a secret only the client holds. The key is stored
only hashed too. (So a replay is as secret as the client's key; clients should use random keys, e.g.
UUIDs, as RFC drafts and every API using the header advise.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_shared.errors import Refusal
from gather_signup.store import IdempotencyRecord, Signup

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255
TOKEN_BYTES = 32  # 256 bits


class KeyInvalid(Refusal):
    """The Idempotency-Key is empty or longer than MAX_KEY_LENGTH."""


class KeyReused(Refusal):
    """The Idempotency-Key came with another request body within KEEP_FOR."""


def new_manage_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, key: str, event_id: uuid.UUID, body_hash: str, now: datetime) -> dict[str, Any] | None:
    """The first answer to this key, or None if there is none within 24 hours (KeyInvalid, KeyReused).
    Call under the event lock."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise KeyInvalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
    record = session.get(IdempotencyRecord, _key_hash(key, event_id))
    if record is None or record.created_at <= now - KEEP_FOR:
        return None
    if not hmac.compare_digest(record.request_hash, body_hash):
        raise KeyReused("This Idempotency-Key was already used with a different request body.")
    token = _seal(base64.urlsafe_b64decode(record.sealed_token + "=="), key, record.signup_id)
    return record.response | {"manage_token": base64.urlsafe_b64encode(token).decode().rstrip("=")}


def remember(
    session: Session, key: str, body_hash: str, signup: Signup, response: dict[str, Any], now: datetime
) -> None:
    """Keep the first answer (replacing an expired record of the same key)."""
    key_hash = _key_hash(key, signup.event_id)
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.key_hash == key_hash))
    token = base64.urlsafe_b64decode(response["manage_token"] + "==")
    sealed = base64.urlsafe_b64encode(_seal(token, key, signup.id)).decode().rstrip("=")
    kept = {name: value for name, value in response.items() if name != "manage_token"}
    session.add(
        IdempotencyRecord(
            key_hash=key_hash,
            request_hash=body_hash,
            signup_id=signup.id,
            response=kept,
            sealed_token=sealed,
            created_at=now,
        )
    )


def purge_expired(session: Session, now: datetime) -> None:
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - KEEP_FOR))


def _key_hash(key: str, event_id: uuid.UUID) -> str:
    # Scoped to the event: the same key on two events' registration paths means two different requests.
    return hashlib.sha256(f"{event_id}\n{key}".encode()).hexdigest()


def _seal(data: bytes, key: str, signup_id: uuid.UUID) -> bytes:
    """XOR with a pad derived from the key; applying it twice gives `data` back."""
    pad = hmac.new(key.encode(), b"gather-manage-token\n" + signup_id.bytes, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))
