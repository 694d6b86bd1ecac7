"""Every message Gather sends, one marshmallow schema per type, registered by type name.

The routing key of a message is its type. Schemas load with unknown fields excluded, so a producer may
add fields without breaking an older consumer; a change that removes or retypes a field is a new `.v2`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from gather_shared.vocabulary import (
    ACCESSIBILITY_FEATURES,
    Channel,
    EventFormat,
    EventStatus,
    MemberRole,
    RegistrationStatus,
    Verification,
    Visibility,
)


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class Venue(_Base):
    name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    postcode = fields.String(allow_none=True)


Accessibility = _Base.from_dict(
    {
        **{feature: fields.Boolean(load_default=False) for feature in ACCESSIBILITY_FEATURES},
        "notes": fields.String(allow_none=True, load_default=None),
    },
    name="Accessibility",
)


class Resource(_Base):
    title = fields.String(required=True)
    url = fields.String(required=True)


class EventSnapshot(_Base):
    """The whole event as the events service knows it, `online_url` included: the broker is internal,
    and the notifications service needs the link to give it to confirmed attendees."""

    id = fields.UUID(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    status = fields.String(required=True, validate=validate.OneOf(list(EventStatus)))
    title = fields.String(required=True)
    summary = fields.String(allow_none=True, load_default=None)
    # Optional: the attendee pages show it; messages from before it was sent load as None.
    description = fields.String(allow_none=True, load_default=None)
    kind = fields.String(required=True)
    tags = fields.List(fields.String(), load_default=list)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    timezone = fields.String(required=True)
    format = fields.String(required=True, validate=validate.OneOf(list(EventFormat)))
    venue = fields.Nested(Venue, allow_none=True, load_default=None)
    online_url = fields.String(allow_none=True, load_default=None)
    capacity = fields.Integer(allow_none=True, required=True, validate=validate.Range(min=1))
    waitlist_enabled = fields.Boolean(required=True)
    language = fields.String(allow_none=True, load_default=None)
    accessibility = fields.Nested(Accessibility, allow_none=True, load_default=None)
    resources = fields.List(fields.Nested(Resource), load_default=list)
    organizer_id = fields.UUID(required=True)
    organizer_name = fields.String(required=True)
    series_id = fields.UUID(allow_none=True, load_default=None)
    # Optional: messages from before they were sent load as the defaults (a verified registration, open
    # as soon as the event is published).
    verification = fields.String(load_default=Verification.CONTACT, validate=validate.OneOf(list(Verification)))
    registration_opens_at = fields.AwareDateTime(allow_none=True, load_default=None)
    # Optional: events were all listed before it was sent.
    visibility = fields.String(load_default=Visibility.LISTED, validate=validate.OneOf(list(Visibility)))
    # Optional, the organizer's opt-ins (docs/notifications.md, "The organizer's digest"): messages from before
    # them load as no digest and no alert.
    digest = fields.Boolean(load_default=False)
    waitlist_alert_at = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=1))


class EventPublished(_Base):
    event = fields.Nested(EventSnapshot, required=True)


class Change(_Base):
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class EventUpdated(_Base):
    event = fields.Nested(EventSnapshot, required=True)
    changes = fields.Dict(keys=fields.String(), values=fields.Nested(Change), required=True)


class EventStatusChanged(_Base):
    event = fields.Nested(EventSnapshot, required=True)
    reason = fields.String(allow_none=True, load_default=None)


class OrganizerKeyIssued(_Base):
    """Lets the other services authorise an organizer without calling the events service: they keep the
    hash of the current key (see docs/authorisation.md)."""

    organizer_id = fields.UUID(required=True)
    name = fields.String(required=True)
    api_key_hash = fields.String(required=True, validate=validate.Length(equal=64))
    # Optional: where the notifications service sends the organizer's digest and waitlist alert. Messages
    # from before it load as None (no address known: nothing is sent until the next key message).
    email = fields.String(allow_none=True, load_default=None)


class OrganizerKeyRevoked(_Base):
    """The admin cut the organizer's keys off: no key of theirs works any more, in any service, their
    members' included."""

    organizer_id = fields.UUID(required=True)


class OrganizerMemberKeyIssued(_Base):
    """A member of an organizer account was added, or got a new key (which revokes their old one): the other
    services keep the hash, so the member's key works there too (see docs/authorisation.md). `member_id`
    is never the organizer's own id: the account's first owner is announced by `organizer.key_issued.v1`."""

    organizer_id = fields.UUID(required=True)
    member_id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(list(MemberRole)))
    api_key_hash = fields.String(required=True, validate=validate.Length(equal=64))


class OrganizerMemberRemoved(_Base):
    """An owner removed a member from the account: the member's key stops working in every service."""

    organizer_id = fields.UUID(required=True)
    member_id = fields.UUID(required=True)


class Registration(_Base):
    """A registration as the notifications service needs it: how to reach the attendee, nothing more.
    Never a token nor a link that carries one: the notifications service signs the attendee's links when
    it sends a message (gather_shared.tokens), from `signup_id` and `token_version`."""

    signup_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(list(RegistrationStatus)))
    display_name = fields.String(required=True)
    email = fields.String(allow_none=True, load_default=None)
    phone = fields.String(allow_none=True, load_default=None)
    channels = fields.List(fields.String(validate=validate.OneOf(list(Channel))), required=True)
    timezone = fields.String(allow_none=True, load_default=None)
    consent_reminders = fields.Boolean(load_default=False)
    waitlist_position = fields.Integer(allow_none=True, load_default=None)
    token_version = fields.Integer(load_default=1, validate=validate.Range(min=1))
    created_at = fields.AwareDateTime(required=True)


class LinkRequested(Registration):
    """Someone asked for a place with this registration's contact: send it a link (a verify link for a
    pending registration, a manage link for an active one). `link_request` numbers the requests of one
    registration, so that each is sent once whatever the redeliveries, and a new request is sent again.
    The contact details are the registration's own, never those of the request (which anyone may type)."""

    link_request = fields.Integer(required=True, validate=validate.Range(min=1))
    #: When a pending registration lapses unless its link is followed (None for a manage link).
    expires_at = fields.AwareDateTime(allow_none=True, load_default=None)


class SignupRemoved(Registration):
    """The event's organizer removed this registration (it is now cancelled); `reason` is the organizer's
    words, told to the attendee. Nothing about the organizer or who else is registered."""

    reason = fields.String(required=True, validate=validate.Length(min=1))


class SignupErased(_Base):
    signup_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)


class AvailabilityChanged(_Base):
    """An event's seats as the signup service counts them, after a change: what the attendee pages show
    ("3 places left"). No contact details: the pages need counts, not people. `seq` grows with every
    change of an event's counts, so that a consumer keeps the newest whatever order messages arrive in."""

    event_id = fields.UUID(required=True)
    capacity = fields.Integer(allow_none=True, required=True, validate=validate.Range(min=1))
    confirmed = fields.Integer(required=True, validate=validate.Range(min=0))
    waitlisted = fields.Integer(required=True, validate=validate.Range(min=0))
    waitlist_enabled = fields.Boolean(required=True)
    seq = fields.Integer(required=True, validate=validate.Range(min=1))


SCHEMAS: dict[str, type[Schema]] = {
    "organizer.key_issued.v1": OrganizerKeyIssued,
    "organizer.key_revoked.v1": OrganizerKeyRevoked,
    "organizer.member_key_issued.v1": OrganizerMemberKeyIssued,
    "organizer.member_removed.v1": OrganizerMemberRemoved,
    "event.published.v1": EventPublished,
    "event.updated.v1": EventUpdated,
    "event.postponed.v1": EventStatusChanged,
    "event.cancelled.v1": EventStatusChanged,
    "signup.confirmed.v1": Registration,
    "signup.waitlisted.v1": Registration,
    "signup.promoted.v1": Registration,
    "signup.cancelled.v1": Registration,
    "signup.removed.v1": SignupRemoved,
    "signup.updated.v1": Registration,
    "signup.verification_requested.v1": LinkRequested,
    "signup.manage_link_requested.v1": LinkRequested,
    "signup.erased.v1": SignupErased,
    "signup.availability_changed.v1": AvailabilityChanged,
}


#: One instance per type, made once: building a schema deep-copies its fields, which cost more than a
#: load. Loading and dumping keep no state in the instance, so threads may share them.
_INSTANCES: dict[str, Schema] = {type_: schema() for type_, schema in SCHEMAS.items()}


def dump(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Serialise outgoing `data` for `type_`, refusing anything its own consumers would reject."""
    schema = _INSTANCES[type_]
    body = schema.dump(data)
    errors = schema.validate(body)
    if errors:
        raise ValidationError(errors)
    return body


def load(type_: str, data: Any) -> dict[str, Any]:
    """Validate and deserialise incoming `data`; raises ValidationError (or KeyError for an unknown type)."""
    return _INSTANCES[type_].load(data)
