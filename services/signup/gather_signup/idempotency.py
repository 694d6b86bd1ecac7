"""`Idempotency-Key` on registrations taken at once (201): the same key with the same body, from the same
caller (the event's organizer, or the public), within 24 hours gets the first answer again and creates
nothing; with a different body, 422. (A registration that waits
for its contact's verification answers 202 with nothing to replay: asking again sends a fresh link.)

Records are looked up under the event's lock (seats.lock_event), so two requests racing with one key
are serialised like any registration: the second finds the first's record.

Nothing secret is kept: the key is stored only hashed, and the first answer without its manage token,
which a manage token needs no copy of: it is signed again for the replay (gather_shared.tokens). Clients
should use random keys, e.g. UUIDs, as RFC drafts and every API using the header advise."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_shared.errors import Refusal
from gather_signup.store import IdempotencyRecord, Signup

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class KeyInvalid(Refusal):
    """The Idempotency-Key is empty or longer than MAX_KEY_LENGTH."""


class KeyReused(Refusal):
    """The Idempotency-Key came with another request body within KEEP_FOR."""


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def replay(
    session: Session, key: str, caller: str, event_id: uuid.UUID, body_hash: str, now: datetime
) -> IdempotencyRecord | None:
    """The record of the first answer to this key from this `caller` (caller_of), or None if there is none
    within 24 hours (KeyInvalid, KeyReused). Call under the event lock."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise KeyInvalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
    record = session.get(IdempotencyRecord, _key_hash(key, caller, event_id))
    if record is None or record.created_at <= now - KEEP_FOR:
        return None
    if not hmac.compare_digest(record.request_hash, body_hash):
        raise KeyReused("This Idempotency-Key was already used with a different request body.")
    return record


def remember(
    session: Session, key: str, caller: str, body_hash: str, signup: Signup, response: dict[str, Any], now: datetime
) -> None:
    """Keep the first answer, without its manage token (replacing an expired record of the same key)."""
    key_hash = _key_hash(key, caller, signup.event_id)
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.key_hash == key_hash))
    kept = {name: value for name, value in response.items() if name != "manage_token"}
    session.add(
        IdempotencyRecord(key_hash=key_hash, request_hash=body_hash, signup_id=signup.id, response=kept, created_at=now)
    )


def purge_expired(session: Session, now: datetime) -> None:
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - KEEP_FOR))


def caller_of(organizer_id: uuid.UUID | None) -> str:
    """Whose keys a request's key is among: the organizer account that adds someone (any of its members),
    or the public. A replay answers with the registration's manage token, so a key the organizer's tool
    used must never be replayed to anyone else, whatever they know of the request."""
    return f"organizer:{organizer_id}" if organizer_id is not None else "public"


def _key_hash(key: str, caller: str, event_id: uuid.UUID) -> str:
    # Scoped to the caller and the event: the same key from someone else, or on another event's
    # registration path, is another request.
    return hashlib.sha256(f"{caller}\n{event_id}\n{key}".encode()).hexdigest()
