"""HTTP API of the events service: organizers and their events."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from flask import Response, jsonify
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from gather_events.store import Event, Organizer
from gather_shared import web
from gather_shared.db import utcnow
from gather_shared.outbox import emit

blp = Blueprint("events", __name__, url_prefix="/v1", description="Organizers and their events")

KINDS = ["workshop", "support_group", "talk", "awareness_campaign", "recreational", "social", "other"]
FORMATS = ["in_person", "online", "hybrid"]


# --- schemas ----------------------------------------------------------------------------------------


class OrganizerIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(required=True, validate=validate.Length(max=320))


class OrganizerOut(Schema):
    id = fields.UUID()
    name = fields.String()
    email = fields.String()
    api_key = fields.String()


class VenueSchema(Schema):
    name = fields.String(validate=validate.Length(max=200), load_default=None, allow_none=True)
    address = fields.String(validate=validate.Length(max=300), load_default=None, allow_none=True)
    city = fields.String(validate=validate.Length(max=100), load_default=None, allow_none=True)
    postcode = fields.String(validate=validate.Length(max=20), load_default=None, allow_none=True)


class AccessibilitySchema(Schema):
    wheelchair = fields.Boolean(load_default=False)
    step_free = fields.Boolean(load_default=False)
    hearing_loop = fields.Boolean(load_default=False)
    sign_language = fields.Boolean(load_default=False)
    captions = fields.Boolean(load_default=False)
    quiet_space = fields.Boolean(load_default=False)
    notes = fields.String(validate=validate.Length(max=1000), load_default=None, allow_none=True)


class ResourceSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.Url(required=True, schemes={"http", "https"})


class EventIn(Schema):
    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    summary = fields.String(validate=validate.Length(max=500), load_default=None, allow_none=True)
    description = fields.String(validate=validate.Length(max=20000), load_default=None, allow_none=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                       validate=validate.Length(max=20), load_default=list)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    timezone = fields.String(required=True)
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))
    venue = fields.Nested(VenueSchema, load_default=None, allow_none=True)
    online_url = fields.Url(schemes={"https"}, load_default=None, allow_none=True)
    capacity = fields.Integer(validate=validate.Range(min=1), load_default=None, allow_none=True)
    waitlist_enabled = fields.Boolean(load_default=True)
    language = fields.String(validate=validate.Length(max=35), load_default=None, allow_none=True)
    accessibility = fields.Nested(AccessibilitySchema, load_default=None, allow_none=True)
    resources = fields.List(fields.Nested(ResourceSchema), validate=validate.Length(max=20), load_default=list)

    @validates("timezone")
    def _timezone(self, value: str, **_: Any) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError("Not a known IANA time zone, e.g. Europe/London.") from exc

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("Must be after starts_at.", "ends_at")
        if data["format"] in ("online", "hybrid") and not data.get("online_url"):
            raise ValidationError("Required for online and hybrid events.", "online_url")
        if data["format"] in ("in_person", "hybrid") and not data.get("venue"):
            raise ValidationError("Required for in-person and hybrid events.", "venue")


class OrganizerRef(Schema):
    id = fields.UUID()
    name = fields.String()


class PublicEvent(Schema):
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
    organizer = fields.Nested(OrganizerRef)
    series_id = fields.UUID(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class OrganizerEvent(PublicEvent):
    """What the event's own organizer sees: the public view plus the online link."""

    online_url = fields.String(allow_none=True)


# --- access -----------------------------------------------------------------------------------------


def current_organizer(session: Any) -> Organizer:
    organizer = web.find_by_token_hash(
        lambda key_hash: session.scalar(sa.select(Organizer).where(Organizer.api_key_hash == key_hash))
    )
    if organizer is None:
        raise web.unauthorized("This call needs an organizer API key.")
    return organizer


def own_event(session: Any, event_id: uuid.UUID, organizer: Organizer) -> Event:
    event = session.get(Event, event_id, with_for_update=True)
    if event is None or (event.organizer_id != organizer.id and event.status == "draft"):
        raise web.Problem(404, "not_found", "No such event.")
    if event.organizer_id != organizer.id:
        raise web.Problem(403, "forbidden", "This event belongs to another organizer.")
    return event


def snapshot(event: Event) -> dict[str, Any]:
    """The event as messages carry it (schema: gather_shared.messages.EventSnapshot)."""
    return {
        "id": event.id, "version": event.version, "status": event.status, "title": event.title,
        "summary": event.summary, "kind": event.kind, "tags": event.tags, "starts_at": event.starts_at,
        "ends_at": event.ends_at, "timezone": event.timezone, "format": event.format, "venue": event.venue,
        "online_url": event.online_url, "capacity": event.capacity, "waitlist_enabled": event.waitlist_enabled,
        "language": event.language, "accessibility": event.accessibility, "resources": event.resources,
        "organizer_id": event.organizer_id, "organizer_name": event.organizer.name, "series_id": event.series_id,
    }


# --- routes -----------------------------------------------------------------------------------------


@blp.route("/organizers", methods=["POST"])
@blp.arguments(OrganizerIn)
@blp.response(201, OrganizerOut)
@blp.doc(security=[{"bearer": []}])
def create_organizer(body: dict[str, Any]) -> dict[str, Any]:
    """Create an organizer (admin). The API key is shown this once."""
    rt = web.current_runtime()
    web.require_admin(rt.settings)
    api_key = "gok_" + secrets.token_urlsafe(32)
    with rt.sessions.begin() as session:
        organizer = Organizer(name=body["name"], email=body["email"], api_key_hash=web.hash_secret(api_key))
        session.add(organizer)
        session.flush()
        emit(session, rt.source, "organizer.key_issued.v1",
             {"organizer_id": organizer.id, "name": organizer.name, "api_key_hash": organizer.api_key_hash})
    return {"id": organizer.id, "name": organizer.name, "email": organizer.email, "api_key": api_key}


@blp.route("/events", methods=["POST"])
@blp.arguments(EventIn)
@blp.response(201, OrganizerEvent)
@blp.doc(security=[{"bearer": []}])
def create_event(body: dict[str, Any]) -> Event:
    """Create a draft event."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        organizer = current_organizer(session)
        body["tags"] = sorted({t.strip().lower() for t in body["tags"] if t.strip()})
        event = Event(organizer_id=organizer.id, organizer=organizer, status="draft", version=1, **body)
        session.add(event)
    return event


@blp.route("/events/<uuid:event_id>/publish", methods=["POST"])
@blp.response(200, OrganizerEvent)
@blp.doc(security=[{"bearer": []}])
def publish_event(event_id: uuid.UUID) -> Event:
    """Publish a draft: it becomes visible and open for registration."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        event = own_event(session, event_id, current_organizer(session))
        if event.status != "draft":
            raise web.Problem(409, "invalid_transition", f"The event is {event.status}; only a draft can be published.",
                              current_status=event.status)
        event.status = "published"
        event.version += 1
        event.updated_at = utcnow()
        emit(session, rt.source, "event.published.v1", {"event": snapshot(event)})
    return event


@blp.route("/events/<uuid:event_id>", methods=["GET"])
@blp.doc(responses={"200": {"content": {"application/json": {"schema": PublicEvent}}}})
def get_event(event_id: uuid.UUID) -> Response:
    """One event: the public view, or the full view for its organizer."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        event = session.get(Event, event_id)
        token_holder = web.find_by_token_hash(
            lambda key_hash: session.scalar(sa.select(Organizer).where(Organizer.api_key_hash == key_hash))
        )
        is_owner = token_holder is not None and event is not None and event.organizer_id == token_holder.id
        if event is None or (event.status == "draft" and not is_owner):
            raise web.Problem(404, "not_found", "No such event.")
        return jsonify((OrganizerEvent if is_owner else PublicEvent)().dump(event))
