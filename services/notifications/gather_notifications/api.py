"""HTTP API of the notifications service: the notification log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gather_notifications.store import Event, Notification, Organizer
from gather_shared import web

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="Notifications")

STATUSES = ["pending", "sending", "sent", "delivered", "undelivered", "failed", "suppressed", "cancelled"]


class NotificationQuery(Schema):
    event_id = fields.UUID(load_default=None)
    signup_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class NotificationOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    signup_id = fields.UUID()
    kind = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    scheduled_for = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class NotificationPage(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


@blp.route("/notifications", methods=["GET"])
@blp.arguments(NotificationQuery, location="query")
@blp.response(200, NotificationPage)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """The notification log: admin sees all; an organizer sees their own events' notifications."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        query = sa.select(Notification).order_by(Notification.created_at, Notification.id).limit(args["limit"])
        if not web.is_admin(rt.settings):
            organizer = web.find_by_token_hash(
                lambda h: session.scalar(sa.select(Organizer).where(Organizer.api_key_hash == h)))
            if organizer is None:
                raise web.unauthorized("This call needs the admin token or an organizer API key.")
            if args["event_id"] is None:
                raise web.Problem(422, "validation_error", "Organizers must name an event.",
                                  errors={"event_id": ["Required for organizers."]})
            event = session.get(Event, args["event_id"])
            if event is None or event.organizer_id != organizer.id:
                raise web.Problem(403, "forbidden", "That event belongs to another organizer.")
        for name in ("event_id", "signup_id", "status"):
            if args[name] is not None:
                query = query.where(getattr(Notification, name) == args[name])
        return {"items": session.scalars(query).all(), "next_cursor": None}


