"""What the events service tells the other services: every message it sends is built here, and emitted
through the outbox in the transaction of the change it announces. Drafts are never announced."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gather_events import domain
from gather_events.bootstrap import SOURCE
from gather_events.store import Event, Member, Organizer
from gather_shared.bus import emit


def snapshot(event: Event) -> dict[str, Any]:
    """The event as messages carry it (schema: gather_shared.messages.EventSnapshot)."""
    return {
        "id": event.id,
        "version": event.version,
        "status": event.status,
        "title": event.title,
        "summary": event.summary,
        "description": event.description,
        "kind": event.kind,
        "tags": event.tags,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "timezone": event.timezone,
        "format": event.format,
        "venue": event.venue,
        "online_url": event.online_url,
        "capacity": event.capacity,
        "waitlist_enabled": event.waitlist_enabled,
        "language": event.language,
        "accessibility": event.accessibility,
        "resources": event.resources,
        "organizer_id": event.organizer_id,
        "organizer_name": event.organizer.name,
        "series_id": event.series_id,
        "verification": event.verification,
        "registration_opens_at": event.registration_opens_at,
        "visibility": event.visibility,
        "digest": event.digest,
        "waitlist_alert_at": event.waitlist_alert_at,
    }


def transitioned(session: Session, event: Event, step: domain.Transition, reason: str | None) -> None:
    """`event.published.v1`, `event.postponed.v1` or `event.cancelled.v1` (with the reason attendees are
    told), or `event.updated.v1` for a postponed event back on: the message of `step`."""
    data: dict[str, Any] = {"event": snapshot(event)}
    if step in (domain.POSTPONE, domain.CANCEL):
        data["reason"] = reason
    emit(session, SOURCE, step.message, data)


def updated(session: Session, event: Event, changes: dict[str, dict[str, Any]]) -> None:
    """`event.updated.v1`: the whole event, and `{field: {old, new}}` of what changed."""
    emit(session, SOURCE, "event.updated.v1", {"event": snapshot(event), "changes": changes})


def key_issued(session: Session, organizer: Organizer) -> None:
    """`organizer.key_issued.v1`: the hash of the organizer's new key, so that the other services can
    authorise it without asking (docs/authorisation.md), and the account's email address, where the
    notifications service sends the digests the organizer opts in to."""
    emit(
        session,
        SOURCE,
        "organizer.key_issued.v1",
        {
            "organizer_id": organizer.id,
            "name": organizer.name,
            "api_key_hash": organizer.api_key_hash,
            "email": organizer.email,
        },
    )


def key_revoked(session: Session, organizer: Organizer) -> None:
    """`organizer.key_revoked.v1`: the other services stop accepting the organizer's keys, its members' too."""
    emit(session, SOURCE, "organizer.key_revoked.v1", {"organizer_id": organizer.id})


def member_key_issued(session: Session, member: Member) -> None:
    """`organizer.member_key_issued.v1`: a member was added or got a new key; like key_issued, the hash only."""
    emit(
        session,
        SOURCE,
        "organizer.member_key_issued.v1",
        {
            "organizer_id": member.organizer_id,
            "member_id": member.id,
            "name": member.name,
            "role": member.role,
            "api_key_hash": member.api_key_hash,
        },
    )


def member_removed(session: Session, member: Member) -> None:
    """`organizer.member_removed.v1`: the other services stop accepting the member's key."""
    emit(session, SOURCE, "organizer.member_removed.v1", {"organizer_id": member.organizer_id, "member_id": member.id})
