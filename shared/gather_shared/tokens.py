"""The tokens in attendees' links, signed rather than stored (docs/privacy.md, "Links and tokens").

Each token is a payload signed with GATHER_SECRET_KEY by itsdangerous, with a salt per purpose, so that a
token made for one purpose is worthless for another:

- verify:      {"s": signup_id}; valid for GATHER_VERIFY_MINUTES after it was signed, and single use (the
               signup service lets it confirm a pending registration once).
- manage:      {"s": signup_id, "v": token_version}; valid while `v` is the registration's current
               token_version, which erasure bumps: every older link then stops working.
- unsubscribe: {"s": signup_id}; stops reminders to the address of that registration.

Nobody needs to store a token: the signup service checks a manage token against the registration it names,
and the notifications service signs the links of a message when it sends it, from the `signup_id` (and
`token_version`) that messages carry. A database, an outbox row or a dead letter holds no working link.

Only the verify token carries the time it was signed (URLSafeTimedSerializer), since only it expires. The
others are signed without one (URLSafeSerializer): a manage token is then the same in every message and
every answer for one version of a registration, and a few characters shorter in an SMS.

The links themselves all point at the attendee pages (GATHER_PUBLIC_URL), which call the services' APIs."""

from __future__ import annotations

import uuid
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

VERIFY = "verify"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"


class InvalidToken(Exception):  # noqa: N818 - what the caller meets: a token that is not one of ours
    """Not a token signed with this secret for this purpose."""


class ExpiredToken(InvalidToken):
    """One of ours, for this purpose, but older than it may be."""


def _serializer(secret: str, purpose: str) -> URLSafeSerializer | URLSafeTimedSerializer:
    if purpose == VERIFY:
        return URLSafeTimedSerializer(secret, salt=purpose)
    return URLSafeSerializer(secret, salt=purpose)


def _read(secret: str, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    serializer = _serializer(secret, purpose)
    try:
        if isinstance(serializer, URLSafeTimedSerializer):
            payload = serializer.loads(token, max_age=max_age)
        else:
            payload = serializer.loads(token)
    except SignatureExpired as exc:
        raise ExpiredToken(f"The {purpose} link has expired.") from exc
    except BadSignature as exc:
        raise InvalidToken(f"Not a {purpose} link.") from exc
    if not isinstance(payload, dict):
        raise InvalidToken(f"Not a {purpose} link.")
    return payload


def _signup_id(payload: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(payload["s"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("The link names no registration.") from exc


# --- verify -------------------------------------------------------------------------------------------


def verify_token(secret: str, signup_id: uuid.UUID) -> str:
    return _serializer(secret, VERIFY).dumps({"s": str(signup_id)})


def read_verify_token(secret: str, token: str, max_age_seconds: int) -> uuid.UUID:
    """The registration a verify token names (ExpiredToken once `max_age_seconds` passed, InvalidToken)."""
    return _signup_id(_read(secret, VERIFY, token, max_age_seconds))


def verify_url(public_url: str, secret: str, signup_id: uuid.UUID) -> str:
    return f"{public_url}/verify/{verify_token(secret, signup_id)}"


# --- manage -------------------------------------------------------------------------------------------


def manage_token(secret: str, signup_id: uuid.UUID, token_version: int) -> str:
    return _serializer(secret, MANAGE).dumps({"s": str(signup_id), "v": token_version})


def read_manage_token(secret: str, token: str) -> tuple[uuid.UUID, int]:
    """(signup_id, token_version) of a manage token (InvalidToken). The caller compares the version with
    the registration's current one."""
    payload = _read(secret, MANAGE, token)
    version = payload.get("v")
    if not isinstance(version, int):
        raise InvalidToken("The link names no version.")
    return _signup_id(payload), version


def manage_url(public_url: str, secret: str, signup_id: uuid.UUID, token_version: int) -> str:
    return f"{public_url}/manage/{signup_id}/{manage_token(secret, signup_id, token_version)}"


# --- unsubscribe --------------------------------------------------------------------------------------


def unsubscribe_token(secret: str, signup_id: uuid.UUID) -> str:
    return _serializer(secret, UNSUBSCRIBE).dumps({"s": str(signup_id)})


def read_unsubscribe_token(secret: str, token: str) -> uuid.UUID:
    return _signup_id(_read(secret, UNSUBSCRIBE, token))


def unsubscribe_url(public_url: str, secret: str, signup_id: uuid.UUID) -> str:
    return f"{public_url}/unsubscribe/{unsubscribe_token(secret, signup_id)}"
