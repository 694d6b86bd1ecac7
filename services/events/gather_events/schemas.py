"""The HTTP schemas of the events service: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from gather_events import domain
from gather_shared import web
from gather_shared.vocabulary import (
    ACCESSIBILITY_FEATURES,
    EventFormat,
    EventKind,
    EventStatus,
    MemberRole,
    Verification,
    Visibility,
)
from gather_shared.web import Line, Text

TAG_PATTERN = r"^[^|,]+$"  # `|` is the separator of the tag index (domain.tag_keys); `,` reads as a list
#: Times outside this range are surely mistakes, and near datetime's limits they could not even be converted.
SUPPORTED_TIMES = validate.Range(
    min=datetime(2000, 1, 1, tzinfo=UTC),
    max=datetime(2100, 1, 1, tzinfo=UTC),
    error="Must be between the years 2000 and 2100.",
)
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"  # a BCP 47 language tag, e.g. en, pt-BR


def one_of(values: Iterable[str], description: str | None = None, **options: Any) -> Text:
    """Text that must be one of `values` (a vocabulary's), with its `description` for the OpenAPI document."""
    if description is not None:
        options["metadata"] = {"description": description}
    return Text(validate=validate.OneOf(list(values)), **options)


class Link(fields.Url):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return web.storable(super()._deserialize(value, attr, data, **kwargs))


class Tag(Line):
    """A tag, trimmed and lower-cased before it is validated."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


class ProblemOut(web.ProblemOut):
    """RFC 9457 problem details, with what an answer about an event adds."""

    current_status = fields.String(metadata={"description": "on 409: the event's status"})


# --- organizers -------------------------------------------------------------------------------------


class OrganizerIn(Schema):
    name = Line(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True, validate=validate.Length(max=320))


class OrganizerOut(Schema):
    id = fields.UUID()
    name = fields.String()
    email = fields.String(metadata={"description": "where the account's digests and waitlist alerts go"})
    created_at = fields.AwareDateTime()


class WithKey(Schema):
    """An answer that issues an API key (sent Cache-Control: no-store)."""

    api_key = fields.String(metadata={"description": "Shown this once; only its hash is stored."})


class OrganizerWithKey(WithKey, OrganizerOut):
    pass


class MemberRef(Schema):
    id = fields.UUID(metadata={"description": "the member; the first owner's is the organizer's id"})
    name = fields.String()
    role = fields.String(metadata={"description": " | ".join(MemberRole)})


class WhoAmI(OrganizerOut):
    member = fields.Nested(MemberRef, metadata={"description": "who holds the key"})


class MemberIn(Schema):
    name = Line(required=True, validate=validate.Length(min=1, max=200))
    role = one_of(
        MemberRole,
        description="owner: everything, including members, keys and the audit log; facilitator: events, their "
        "attendee lists and announcements",
        required=True,
    )


class MemberOut(MemberRef):
    organizer_id = fields.UUID()
    first_owner = fields.Boolean(metadata={"description": "the account's own key: never removed"})
    created_at = fields.AwareDateTime()


class MemberWithKey(WithKey, MemberOut):
    pass


class MemberList(Schema):
    items = fields.List(fields.Nested(MemberOut))


# --- events in --------------------------------------------------------------------------------------


class VenueSchema(Schema):
    name = Line(required=True, validate=validate.Length(min=1, max=200))
    address = Line(required=True, validate=validate.Length(min=1, max=300))
    city = Line(validate=validate.Length(max=100), load_default=None, allow_none=True)
    postcode = Line(validate=validate.Length(max=20), load_default=None, allow_none=True)


AccessibilitySchema = Schema.from_dict(
    {
        **{feature: fields.Boolean(load_default=False) for feature in ACCESSIBILITY_FEATURES},
        "notes": Text(validate=validate.Length(max=1000), load_default=None, allow_none=True),
    },
    name="AccessibilitySchema",
)


class ResourceSchema(Schema):
    title = Line(required=True, validate=validate.Length(min=1, max=200))
    url = Link(required=True, schemes={"http", "https"}, validate=validate.Length(max=2000))


class EventFields(Schema):
    """Every field an organizer writes. Unknown fields are refused, so that a typo is not silently lost."""

    title = Line(required=True, validate=validate.Length(min=1, max=200))
    summary = Line(validate=validate.Length(max=500), load_default=None, allow_none=True)
    description = Text(validate=validate.Length(max=20000), load_default=None, allow_none=True)
    kind = one_of(EventKind, required=True)
    tags = fields.List(
        Tag(validate=[validate.Length(min=1, max=40), validate.Regexp(TAG_PATTERN)]),
        validate=validate.Length(max=20),
        load_default=list,
    )
    starts_at = fields.AwareDateTime(required=True, validate=SUPPORTED_TIMES)
    ends_at = fields.AwareDateTime(required=True, validate=SUPPORTED_TIMES)
    timezone = Text(
        required=True,
        validate=validate.Length(max=64),
        metadata={"description": "IANA time zone name, e.g. Europe/London"},
    )
    format = one_of(EventFormat, required=True)
    venue = fields.Nested(VenueSchema, load_default=None, allow_none=True)
    online_url = Link(
        schemes={"https"},
        validate=validate.Length(max=2000),
        load_default=None,
        allow_none=True,
        metadata={"description": "Never shown publicly."},
    )
    capacity = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=1_000_000),
        load_default=None,
        allow_none=True,
        metadata={"description": "null: unlimited"},
    )
    waitlist_enabled = fields.Boolean(load_default=True)
    language = Text(
        validate=[validate.Length(max=35), validate.Regexp(LANGUAGE_PATTERN)], load_default=None, allow_none=True
    )
    accessibility = fields.Nested(AccessibilitySchema, load_default=None, allow_none=True)
    resources = fields.List(fields.Nested(ResourceSchema), validate=validate.Length(max=20), load_default=list)
    verification = one_of(
        Verification,
        description="contact: a public registration is taken once the attendee follows the link sent to their "
        "email or phone; none: at once (never for a support_group)",
        load_default=Verification.CONTACT,
    )
    registration_opens_at = fields.AwareDateTime(
        validate=SUPPORTED_TIMES,
        load_default=None,
        allow_none=True,
        metadata={"description": "before it, registration is closed; null: open once published"},
    )
    visibility = one_of(
        Visibility,
        description="listed: in the listing, its calendar and search; unlisted: reachable by its link only "
        "(GET /v1/events/{id} and its calendar), in none of them. Only the organizer's own views show it",
        load_default=Visibility.LISTED,
    )
    digest = fields.Boolean(
        load_default=False,
        metadata={
            "description": "true: one email a day to the organizer's address with the event's new registrations "
            "and cancellations of the day before, as counts (no names, no contacts). Only the organizer's own "
            "views show it"
        },
    )
    waitlist_alert_at = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=1_000_000),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "an email to the organizer's address, once, when the waitlist reaches this many "
            "people; null: no alert. Only the organizer's own views show it"
        },
    )

    @validates("timezone")
    def _timezone(self, value: str, **_: Any) -> None:
        if not web.is_time_zone(value):
            raise ValidationError("Not a known IANA time zone, e.g. Europe/London.")

    @post_load
    def _normalize(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "tags" in data:
            data["tags"] = domain.normalize_tags(data["tags"])
        return data


class SeriesFields(EventFields):
    """What a change of a whole series may change: everything but the dates, which are each date's own
    (refused as unknown fields)."""

    class Meta:
        exclude = ("starts_at", "ends_at", "registration_opens_at")


class EventCreate(EventFields):
    recurrence = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={
            "description": f"An RFC 5545 RRULE such as FREQ=WEEKLY;COUNT=10 (at most "
            f"{domain.MAX_OCCURRENCES} occurrences): creates a series of separate "
            "events sharing a series_id, in local time of `timezone`."
        },
    )

    @validates_schema(skip_on_field_errors=True)
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors = domain.consistency_errors(data)
        if errors:
            raise ValidationError(errors)


class Reason(Schema):
    reason = Line(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={"description": "Told to the attendees."},
    )


class ListingArgs(Schema):
    q = Text(validate=validate.Length(max=200), metadata={"description": "words in title, summary or tags"})
    kind = one_of(EventKind)
    tag = Tag(validate=validate.Length(min=1, max=40))
    format = one_of(EventFormat)
    starts_after = fields.AwareDateTime(validate=SUPPORTED_TIMES, metadata={"description": "inclusive"})
    starts_before = fields.AwareDateTime(validate=SUPPORTED_TIMES, metadata={"description": "exclusive"})


class PageArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = Text(validate=validate.Length(max=200), metadata={"description": "next_cursor of the last page"})


class PublicListingArgs(ListingArgs, PageArgs):
    pass


class OwnListingArgs(ListingArgs, PageArgs):
    status = one_of(EventStatus)


# --- events out -------------------------------------------------------------------------------------


class OrganizerRef(Schema):
    id = fields.UUID()
    name = fields.String()


class PublicEvent(Schema):
    """What anyone may see: never the online link."""

    id = fields.UUID()
    title = fields.String()
    summary = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    kind = fields.String()
    tags = fields.List(fields.String())
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    timezone = fields.String()
    format = fields.String()
    venue = fields.Nested(VenueSchema, allow_none=True)
    capacity = fields.Integer(allow_none=True)
    waitlist_enabled = fields.Boolean()
    language = fields.String(allow_none=True)
    accessibility = fields.Nested(AccessibilitySchema, allow_none=True)
    resources = fields.List(fields.Nested(ResourceSchema))
    verification = fields.String()
    registration_opens_at = fields.AwareDateTime(allow_none=True)
    organizer = fields.Nested(OrganizerRef)
    series_id = fields.UUID(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


_VENUE_FIELDS = tuple(VenueSchema().dump_fields)
_ACCESSIBILITY_FIELDS = tuple(AccessibilitySchema().dump_fields)
_RESOURCE_FIELDS = tuple(ResourceSchema().dump_fields)


def public_item(row: sa.Row[Any]) -> dict[str, Any]:
    """What PublicEvent dumps, for one row of store.public_listing, built directly: a fraction of the CPU of
    PublicPage's dump (docs/benchmarks.md, "Measurements behind the code"). A test checks the listing against
    PublicEvent's dump of the same events, byte for byte, so that the two cannot drift."""
    event = row._asdict()  # one dict: reading each attribute of a Row costs more (same section)
    return {
        "id": str(event["id"]),
        "title": event["title"],
        "summary": event["summary"],
        "description": event["description"],
        "kind": event["kind"],
        "tags": event["tags"],
        "starts_at": event["starts_at"].isoformat(),
        "ends_at": event["ends_at"].isoformat(),
        "timezone": event["timezone"],
        "format": event["format"],
        "venue": _declared(event["venue"], _VENUE_FIELDS),
        "capacity": event["capacity"],
        "waitlist_enabled": event["waitlist_enabled"],
        "language": event["language"],
        "accessibility": _declared(event["accessibility"], _ACCESSIBILITY_FIELDS),
        "resources": [_declared(resource, _RESOURCE_FIELDS) for resource in event["resources"]],
        "verification": event["verification"],
        "registration_opens_at": _isoformat(event["registration_opens_at"]),
        "organizer": {"id": str(event["organizer_id"]), "name": event["organizer_name"]},
        "series_id": None if event["series_id"] is None else str(event["series_id"]),
        "status": event["status"],
        "version": event["version"],
        "created_at": event["created_at"].isoformat(),
        "updated_at": event["updated_at"].isoformat(),
    }


def _isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _declared(stored: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    """A stored JSON object as its nested schema dumps it: only the declared fields, in their order."""
    if stored is None:
        return None
    return {name: stored[name] for name in names if name in stored}


class OrganizerEvent(PublicEvent):
    """What the event's own organizer sees: the public view plus the online link and the visibility (the
    public view of an unlisted event does not say it is unlisted)."""

    online_url = fields.String(allow_none=True)
    visibility = fields.String()
    digest = fields.Boolean()
    waitlist_alert_at = fields.Integer(allow_none=True)
    edited_alone = fields.Boolean(
        metadata={"description": "a date of a series changed on its own: a change of the whole series leaves it alone"}
    )


class PublicPage(Schema):
    items = fields.List(fields.Nested(PublicEvent))
    next_cursor = fields.String(allow_none=True)


class OrganizerPage(Schema):
    items = fields.List(fields.Nested(OrganizerEvent))
    next_cursor = fields.String(allow_none=True)


class PublicSeries(Schema):
    series_id = fields.UUID()
    items = fields.List(fields.Nested(PublicEvent))


class OrganizerSeries(Schema):
    series_id = fields.UUID()
    items = fields.List(fields.Nested(OrganizerEvent))
