"""The audit log of an organizer account: who did what, when, for the account's owners to read. Each
service keeps the entries of what happens in it (the events service: changes of events, members and keys;
the signup service: attendee-list exports and removals), in the same shape, at the same path
(`GET /v1/organizers/{id}/audit`), written in the transaction of the change it records.

What an entry may hold: the member who acted (id, name, role), the action, the id of what it acted on, and
details such as the names of the fields changed. Never an attendee's contact details, nor a value typed
by the public: the log is read by everyone who becomes an owner, long after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from gather_shared import keyset
from gather_shared.db import utcnow
from gather_shared.vocabulary import AuditAction

MAX_PAGE = 100


@dataclass(frozen=True)
class Actor:
    """Who acted: a member of the account (the first owner's id is the organizer's), or the admin (no id)."""

    id: uuid.UUID | None
    name: str
    role: str


ADMIN = Actor(None, "admin", "admin")


class AuditEntryColumns:
    """The columns of a service's audit log, mixed into its declarative base: `class AuditEntry(AuditEntryColumns,
    Base)`."""

    __tablename__ = "audit_log"

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[sa.Index]:
        # Made per table: one Index object cannot belong to the tables of two services.
        return (sa.Index("ix_audit_log_account", "organizer_id", "at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organizer_id: Mapped[uuid.UUID]
    at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str] = mapped_column(sa.String(200))
    actor_role: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(40))
    #: What it acted on: an event, a member, a registration (its id only).
    subject_id: Mapped[uuid.UUID | None]
    details: Mapped[dict[str, Any]]


def record(
    session: Session,
    model: type[AuditEntryColumns],
    organizer_id: uuid.UUID,
    actor: Actor,
    action: AuditAction,
    subject_id: uuid.UUID | None = None,
    **details: Any,
) -> None:
    """Write one entry, in the caller's transaction: it commits with the change it records, or not at all.
    `details`: JSON values (ids as strings)."""
    entry = model()
    entry.id = uuid.uuid4()
    entry.organizer_id = organizer_id
    entry.at = utcnow()
    entry.actor_id, entry.actor_name, entry.actor_role = actor.id, actor.name, actor.role
    entry.action = action
    entry.subject_id = subject_id
    entry.details = details
    session.add(entry)


def page(
    session: Session, model: type[AuditEntryColumns], organizer_id: uuid.UUID, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The account's entries, oldest first, a page at a time (AuditPage)."""
    query = sa.select(model).where(model.organizer_id == organizer_id)
    entries, next_cursor = keyset.page(session.scalars, query, (model.at, model.id), limit, cursor)
    items = [
        {
            "id": entry.id,
            "at": entry.at,
            "who": {"id": entry.actor_id, "name": entry.actor_name, "role": entry.actor_role},
            "action": entry.action,
            "subject_id": entry.subject_id,
            "details": entry.details,
        }
        for entry in entries
    ]
    return {"items": items, "next_cursor": next_cursor}


# --- HTTP schemas (the same in every service that keeps a log) --------------------------------------


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None)


class WhoOut(Schema):
    id = fields.UUID(allow_none=True, metadata={"description": "the member; null for the admin"})
    name = fields.String()
    role = fields.String(metadata={"description": "owner, facilitator, or admin"})


class AuditEntryOut(Schema):
    id = fields.UUID()
    at = fields.AwareDateTime()
    who = fields.Nested(WhoOut)
    action = fields.String(metadata={"description": " | ".join(AuditAction)})
    subject_id = fields.UUID(allow_none=True, metadata={"description": "the event, member or registration"})
    details = fields.Dict(metadata={"description": "e.g. the names of the fields changed; never contact details"})


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEntryOut))
    next_cursor = fields.String(allow_none=True)
