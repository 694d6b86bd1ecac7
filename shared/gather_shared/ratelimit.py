"""Rate limits on the public, admin, organizer and webhook endpoints, counted by Flask-Limiter (the `limits`
library underneath) in a store that every worker of a service shares.

Which limits a route has is said where the route is (`@ratelimit.limited(PER_ADDRESS, PER_EVENT)`); how
much each allows is a setting (GATHER_RATE_LIMIT_*, gather_shared.config). The counters live in the
service's own database (the `rate_limits` table, `DatabaseStorage`), or in Redis when
GATHER_RATE_LIMIT_STORAGE_URL says so: `memory://` would count per process, so with two workers an
attacker would get twice the limit, and a restart would forget it. A request over a limit is answered 429
`rate_limited` with Retry-After (gather_shared.web).

Every identifier a counter is keyed by (an address, an email, a phone number, an API key) is an HMAC with
GATHER_SECRET_KEY: the store never holds a contact detail or a key, and it forgets each counter when its
window ends."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import current_app, request
from flask_limiter import Limiter
from limits.storage import Storage

from gather_shared import db

#: The limits-storage URL scheme of `DatabaseStorage`: the default of GATHER_RATE_LIMIT_STORAGE_URL.
DATABASE_SCHEME = "gather-database"


def counters_table(metadata: sa.MetaData) -> sa.Table:
    """The counters' table, added to a service's own metadata in its store.py, so that its migrations
    create it (each service rate-limits in its own database)."""
    return sa.Table(
        "rate_limits",
        metadata,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
        # Seconds since the epoch (time.time()): the same clock as the `limits` library's windows.
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
    )


_COUNTERS = counters_table(sa.MetaData())


class DatabaseStorage(Storage):
    """A `limits` storage in the service's own database (SQLite or PostgreSQL), for the fixed-window
    strategy: one row per counter, incremented by one atomic upsert, so every worker of the service (and on
    PostgreSQL every machine) counts together. Registered with `limits` by its STORAGE_SCHEME; Flask-Limiter
    builds it from the URL `gather-database://` and the `engine` storage option (gather_shared.web)."""

    STORAGE_SCHEME = [DATABASE_SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        self.engine: sa.Engine = options.pop("engine")
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sa.exc.SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        fresh = _COUNTERS.c.expires_at <= now
        upsert = (
            db.insert(self.engine, _COUNTERS)
            .values(key=key, hits=amount, expires_at=now + expiry)
            .on_conflict_do_update(
                index_elements=[_COUNTERS.c.key],
                set_={
                    "hits": sa.case((fresh, amount), else_=_COUNTERS.c.hits + amount),
                    "expires_at": sa.case((fresh, now + expiry), else_=_COUNTERS.c.expires_at),
                },
            )
            .returning(_COUNTERS.c.hits)
        )
        with self.engine.begin() as conn:
            hits = int(conn.execute(upsert).scalar_one())
        if hits == amount:
            # A window began: the counters whose windows ended go, so that the table holds the current
            # windows only (and no address outlives its window). A statement of its own: deleting in the
            # upsert's transaction could deadlock two workers each deleting the other's expired counter.
            with self.engine.begin() as conn:
                conn.execute(sa.delete(_COUNTERS).where(_COUNTERS.c.expires_at <= now))
        return hits

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            hits = conn.scalar(
                sa.select(_COUNTERS.c.hits).where(_COUNTERS.c.key == key, _COUNTERS.c.expires_at > time.time())
            )
        return hits or 0

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            expires_at = conn.scalar(sa.select(_COUNTERS.c.expires_at).where(_COUNTERS.c.key == key))
        return expires_at if expires_at is not None else time.time()

    def check(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(_COUNTERS)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_COUNTERS).where(_COUNTERS.c.key == key))


# --- what a counter counts: the key functions of the limits -----------------------------------------


def _settings() -> Any:
    return current_app.extensions["gather_runtime"].settings


def _digest(kind: str, value: str) -> str:
    secret = _settings().secret_key.encode()
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def by_address() -> str:
    """The client's address: the peer's, or the one a trusted proxy passed on (gather_shared.web)."""
    return _digest("address", request.remote_addr or "")


def by_key() -> str:
    """The bearer token (an organizer's API key, or the admin token): each key counts on its own."""
    from gather_shared.web import bearer_token

    return _digest("key", bearer_token() or "")


def by_event() -> str:
    """The event of the route (`event_id` in its path)."""
    return _digest("event", str((request.view_args or {}).get("event_id", "")))


def _contact(field: str) -> str | None:
    body = request.get_json(silent=True)
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def email_of_body() -> str | None:
    """The email a registration names, reduced so that its spellings count as one: case, spaces and a
    `+tag` (sam+1@example.org, SAM@example.org and sam@example.org reach the same person)."""
    email = _contact("email")
    if email is None:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def phone_of_body() -> str | None:
    """The phone number a registration names, digits only (+44 7911 123456 and +447911123456 are one)."""
    phone = _contact("phone")
    return None if phone is None else "".join(ch for ch in phone if ch.isdigit())


def by_email() -> str:
    return _digest("email", email_of_body() or "")


def by_phone() -> str:
    return _digest("phone", phone_of_body() or "")


def no_email() -> bool:
    return email_of_body() is None


def no_phone() -> bool:
    return phone_of_body() is None


# --- the limits a route can have --------------------------------------------------------------------


#: One per process (each process serves one app): gather_shared.web.create_app points it at the service's
#: store; the routes declare their limits with `limited`.
limiter = Limiter(key_func=by_address, strategy="fixed-window", headers_enabled=False)


@dataclass(frozen=True)
class RateLimit:
    #: The Settings attribute that holds how much it allows.
    setting: str
    #: What it counts by.
    key: Callable[[], str]
    #: When a request is not counted (a registration without a phone number, by phone).
    exempt: Callable[[], bool] | None = None


PER_ADDRESS = RateLimit("rate_limit_per_address", by_address)
PER_EMAIL = RateLimit("rate_limit_per_contact", by_email, no_email)
PER_PHONE = RateLimit("rate_limit_per_contact", by_phone, no_phone)
PER_EVENT = RateLimit("rate_limit_per_event", by_event)
PER_KEY = RateLimit("rate_limit_per_key", by_key)
ADMIN = RateLimit("rate_limit_admin", by_address)
WEBHOOK = RateLimit("rate_limit_webhooks", by_address)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _amount(setting: str) -> Callable[[], str]:
    """How much a limit allows, read from the settings of the app serving the request."""
    return lambda: str(getattr(_settings(), setting))


def limited(*limits: RateLimit, methods: list[str] | None = None) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """The route's rate limits (on `methods` only, if given), each counted on its own; placed right under
    @blp.route, so that a request over a limit is refused before its body is even read by a schema.
    Flask-Limiter checks them shortest window first and, within a window, in the order given here, and
    stops at the first one exceeded: put the client's own first (PER_ADDRESS), so that a flood from one
    address is refused before it counts against the event everyone shares."""

    def decorate(view: Callable[_P, _R]) -> Callable[_P, _R]:
        for limit in limits:
            view = limiter.limit(_amount(limit.setting), key_func=limit.key, exempt_when=limit.exempt, methods=methods)(
                view
            )
        return view

    return decorate
