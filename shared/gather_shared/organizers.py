"""Organizer keys as the signup and notifications services know them: from `organizer.key_issued.v1` and
`organizer.key_revoked.v1` (the account's own key, its first owner's), `organizer.member_key_issued.v1` and
`organizer.member_removed.v1` (its other members' keys), never by asking the events service (see
docs/authorisation.md)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import ClassVar, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from gather_shared.audit import Actor
from gather_shared.bus import Message
from gather_shared.vocabulary import MemberRole


class MemberKeyCopy:
    """The columns of a service's copy of the keys of the organizers' other members (not the first owner,
    whose key is the organizer's own), mixed into its declarative base: `class MemberKey(MemberKeyCopy, Base)`."""

    __tablename__ = "member_keys"

    #: The member's id.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organizer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    role: Mapped[str] = mapped_column(sa.String(20), default=MemberRole.FACILITATOR)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: When the key kept was issued, or the member removed: an older message arriving late changes nothing.
    key_issued_at: Mapped[datetime]


class OrganizerCopy:
    """The columns of a service's copy of the organizers, mixed into its declarative base:
    `class Organizer(OrganizerCopy, Base)`, with `member_keys` set to the service's MemberKeyCopy. Enough to
    authorise an organizer's members (gather_shared.web.bearer_organizer)."""

    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: The organizer's name: its first owner's, in the audit log.
    name: Mapped[str | None] = mapped_column(sa.String(200))
    #: When the key kept was issued: an older key arriving late must not replace it (keep_key).
    key_issued_at: Mapped[datetime | None]
    #: The service's copy of the other members' keys.
    member_keys: ClassVar[type[MemberKeyCopy]]

    @classmethod
    def by_key_hash(cls, session: Session, key_hash: str) -> tuple[Self, Actor] | None:
        """The organizer whose first owner's key, or another member's, hashes to `key_hash`, and that member."""
        organizer = session.scalar(sa.select(cls).filter_by(api_key_hash=key_hash))
        if organizer is not None:
            return organizer, Actor(organizer.id, organizer.name or "", MemberRole.OWNER)
        member = session.scalar(sa.select(cls.member_keys).filter_by(api_key_hash=key_hash))
        organizer = session.get(cls, member.organizer_id) if member is not None else None
        if member is None or organizer is None:
            return None
        if (
            is_revoked(organizer.api_key_hash)
            and organizer.key_issued_at is not None
            and member.key_issued_at <= organizer.key_issued_at
        ):
            return None  # issued before the admin revoked the account: revoked with it, whatever came late
        return organizer, Actor(member.id, member.name, member.role)


#: A service's copy of the organizers (its subclass of OrganizerCopy).
Copy = TypeVar("Copy", bound=OrganizerCopy)


def revoked_key_hash() -> str:
    """What an organizer's `api_key_hash` becomes when the admin revokes their keys: no key hashes to it (a
    SHA-256 digest is 64 hex digits, this has a colon), and it is unique, as the events service's column
    wants. (is_revoked recognises it.)"""
    return f"revoked:{secrets.token_hex(24)}"


def keep_key(organizer_model: type[Copy], session: Session, message: Message) -> Copy | None:
    """Handler for `organizer.key_issued.v1`: keep the hash of the organizer's current API key. Returns the
    organizer, or None when the message was older than the key kept (for a service that keeps more of the
    message).

    A rotation revokes the old key, so a late copy of an older key message (say, a relay retry) must not
    bring it back: the key issued last (the message's time) wins. `organizer_model` is the service's
    copy of the organizers."""
    data = message.data
    organizer = session.get(organizer_model, data["organizer_id"], with_for_update=True)
    if organizer is None:
        organizer = organizer_model()
        organizer.id = data["organizer_id"]
        session.add(organizer)
    elif organizer.key_issued_at is not None and organizer.key_issued_at >= message.time:
        return None
    organizer.api_key_hash = data["api_key_hash"]
    organizer.name = data["name"]
    organizer.key_issued_at = message.time
    return organizer


def revoke_key(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> None:
    """Handler for `organizer.key_revoked.v1`: the organizer's key, and every member's, stops working here.
    Ordered like keep_key: a late copy of a key issued before the revocation finds a newer time kept, and
    changes nothing."""
    # The organizer's row first: keep_member_key locks it too, so a member key handled at the same moment
    # is either committed before the members are read here (and revoked with them) or sees the revocation.
    organizer = session.get(organizer_model, message.data["organizer_id"], with_for_update=True)
    members = organizer_model.member_keys
    for member in session.scalars(
        sa.select(members)
        .where(members.organizer_id == message.data["organizer_id"], members.key_issued_at <= message.time)
        .with_for_update()
    ):
        member.api_key_hash = revoked_key_hash()
        member.key_issued_at = message.time
    if organizer is None:
        organizer = organizer_model()
        organizer.id = message.data["organizer_id"]
        session.add(organizer)
    elif organizer.key_issued_at is not None and organizer.key_issued_at > message.time:
        return
    organizer.api_key_hash = revoked_key_hash()
    organizer.key_issued_at = message.time


def keep_member_key(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> None:
    """Handler for `organizer.member_key_issued.v1`: keep the hash of a member's current key, unless a newer
    key or the member's removal was kept already, or the admin revoked the account's keys after this one
    was issued (a revoked account's own key carries a revoked hash, set at the revocation's time)."""
    data = message.data
    organizer = session.get(organizer_model, data["organizer_id"], with_for_update=True)  # see revoke_key
    if (
        organizer is not None
        and is_revoked(organizer.api_key_hash)
        and organizer.key_issued_at is not None
        and organizer.key_issued_at >= message.time
    ):
        return
    member = _member(organizer_model, session, message)
    if member is None:
        return
    member.name, member.role = data["name"], data["role"]
    member.api_key_hash = data["api_key_hash"]


def remove_member(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> None:
    """Handler for `organizer.member_removed.v1`: the member's key stops working here. The row stays, with a
    hash no key has, so that a late copy of the member's key message cannot bring the key back."""
    member = _member(organizer_model, session, message)
    if member is not None:
        member.api_key_hash = revoked_key_hash()


def _member(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> MemberKeyCopy | None:
    """The member the message names, locked, to be changed as of the message's time; None when a newer
    message about them was applied already."""
    members = organizer_model.member_keys
    member = session.get(members, message.data["member_id"], with_for_update=True)
    if member is None:
        member = members()
        member.id = message.data["member_id"]
        member.organizer_id = message.data["organizer_id"]
        session.add(member)
    elif member.key_issued_at >= message.time:
        return None
    member.key_issued_at = message.time
    return member


def is_revoked(api_key_hash: str) -> bool:
    return api_key_hash.startswith("revoked:")
