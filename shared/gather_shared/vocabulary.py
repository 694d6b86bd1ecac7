"""The words the services share, each defined once: what the message schemas validate, what the services
store and compare, and what the HTTP APIs show. StrEnums, so that a member is the very string on the wire
and in the database (`RegistrationStatus.WAITLISTED == "waitlisted"`), and so that the class names which
word it is where two vocabularies share a word (`RegistrationStatus.WAITLISTED`, the state of a
registration, against `NotificationKind.WAITLISTED`, the email that says so)."""

from __future__ import annotations

from enum import StrEnum


class EventStatus(StrEnum):
    """Where an event is in its life; the events service's transitions move it (gather_events.domain)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    POSTPONED = "postponed"
    CANCELLED = "cancelled"


#: The events the public may see and register for (while they have not ended).
LISTED_EVENT_STATUSES = (EventStatus.PUBLISHED, EventStatus.POSTPONED)


class Visibility(StrEnum):
    """Who may find an event: `listed` (the default) in the listing, its calendar and search; `unlisted` by
    its link only (a group that must not be listed publicly), never in any of them."""

    LISTED = "listed"
    UNLISTED = "unlisted"


class EventKind(StrEnum):
    WORKSHOP = "workshop"
    SUPPORT_GROUP = "support_group"
    TALK = "talk"
    AWARENESS_CAMPAIGN = "awareness_campaign"
    RECREATIONAL = "recreational"
    SOCIAL = "social"
    OTHER = "other"


class Verification(StrEnum):
    """Whether a public registration waits until its contact is proven (a link sent to it is followed):
    `contact`, the default and the only choice for a support group, or `none` (taken at once)."""

    CONTACT = "contact"
    NONE = "none"


#: The kinds of event whose attendance is too private to take unproven contacts: `verification: none` is
#: refused for them (whoever could register a stranger could put them on a support group's list).
ALWAYS_VERIFIED_KINDS = (EventKind.SUPPORT_GROUP,)


class EventFormat(StrEnum):
    IN_PERSON = "in_person"
    ONLINE = "online"
    HYBRID = "hybrid"


#: The formats that happen online (they need an online link), and those that happen at a venue.
ONLINE_FORMATS = (EventFormat.ONLINE, EventFormat.HYBRID)
VENUE_FORMATS = (EventFormat.IN_PERSON, EventFormat.HYBRID)

#: The accessibility features an organizer can say an event has (each a yes or no), in the order pages list
#: them.
ACCESSIBILITY_FEATURES = ("wheelchair", "step_free", "hearing_loop", "sign_language", "captions", "quiet_space")


class Channel(StrEnum):
    """How an attendee is reached."""

    EMAIL = "email"
    SMS = "sms"


class MemberRole(StrEnum):
    """What a member of an organizer account may do. `owner`: everything, including the account's members,
    their keys and its audit log; `facilitator`: events, their attendee lists and announcements."""

    OWNER = "owner"
    FACILITATOR = "facilitator"


class AuditAction(StrEnum):
    """What an entry of an organizer account's audit log records (gather_shared.audit)."""

    EVENT_CREATED = "event.created"
    EVENT_UPDATED = "event.updated"
    EVENT_PUBLISHED = "event.published"
    EVENT_POSTPONED = "event.postponed"
    EVENT_CANCELLED = "event.cancelled"
    MEMBER_ADDED = "member.added"
    MEMBER_REMOVED = "member.removed"
    KEY_ISSUED = "key.issued"
    KEYS_REVOKED = "keys.revoked"
    ATTENDEES_EXPORTED = "attendees.exported"
    ATTENDEE_REMOVED = "attendee.removed"


class RegistrationStatus(StrEnum):
    """Where a registration stands; only the signup service's seat rule changes it (gather_signup.seats).
    `pending`: asked for, waiting for its contact to follow the link sent to it (it holds no seat);
    `lapsed`: the link was not followed in time (its contact details are gone)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"


#: The registrations that hold a seat or a place on the waitlist.
ACTIVE_REGISTRATION_STATUSES = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)
#: The registrations an organizer sees on the attendee list: never one whose contact was not proven.
LISTED_REGISTRATION_STATUSES = (*ACTIVE_REGISTRATION_STATUSES, RegistrationStatus.CANCELLED)


class NotificationKind(StrEnum):
    """What a notification tells the attendee; each has its templates in gather_notifications/templates.
    `verify_contact` carries the link that proves a contact and confirms a registration; `manage_link`
    answers a registration asked for again by a contact already registered, with a fresh link to it;
    `signup_removed` tells an attendee that the organizer removed their registration, and why;
    `announcement` carries a short message the event's organizer wrote to its registrants. Two kinds go to an
    event's organizer, not to an attendee, and only if the organizer opted in on the event
    (gather_notifications.digest): `organizer_digest`, a day's new registrations and cancellations as counts,
    and `waitlist_alert`, once, when the waitlist reaches the event's `waitlist_alert_at`."""

    VERIFY_CONTACT = "verify_contact"
    MANAGE_LINK = "manage_link"
    SIGNUP_CONFIRMED = "signup_confirmed"
    WAITLISTED = "waitlisted"
    PROMOTED = "promoted"
    SIGNUP_CANCELLED = "signup_cancelled"
    SIGNUP_REMOVED = "signup_removed"
    EVENT_CHANGED = "event_changed"
    EVENT_POSTPONED = "event_postponed"
    EVENT_CANCELLED = "event_cancelled"
    ANNOUNCEMENT = "announcement"
    REMINDER = "reminder"
    ORGANIZER_DIGEST = "organizer_digest"
    WAITLIST_ALERT = "waitlist_alert"


class NotificationStatus(StrEnum):
    """A notification's life: pending → sending → sent (→ delivered / undelivered), or failed, suppressed
    (a rule kept it back: opted out, quiet hours, too late) or cancelled (no longer due, or no contact)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
