"""HTTP API of the signup service: registration, the manage link, availability."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from gather_shared import web
from gather_shared.db import utcnow
from gather_shared.outbox import emit
from gather_signup import seats
from gather_signup.store import Signup

blp = Blueprint("signups", __name__, url_prefix="/v1", description="Registrations")


class ConsentSchema(Schema):
    reminders = fields.Boolean(load_default=False)


class SignupIn(Schema):
    class Meta:
        unknown = EXCLUDE

    display_name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\+[1-9]\d{6,14}$"))
    channels = fields.List(fields.String(validate=validate.OneOf(["email", "sms"])), required=True,
                           validate=validate.Length(min=1))
    timezone = fields.String(load_default=None, allow_none=True)
    consent = fields.Nested(ConsentSchema, load_default=lambda: {"reminders": False})

    @validates_schema
    def _contacts(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email") and not data.get("phone"):
            raise ValidationError("Give an email address or a phone number.", "email")
        if "email" in data["channels"] and not data.get("email"):
            raise ValidationError("The email channel needs an email address.", "channels")
        if "sms" in data["channels"] and not data.get("phone"):
            raise ValidationError("The sms channel needs a phone number.", "channels")


class SignupOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    status = fields.String()
    waitlist_position = fields.Integer(allow_none=True)
    manage_token = fields.String()
    created_at = fields.AwareDateTime()


def registration_message(signup: Signup, manage_url: str) -> dict[str, Any]:
    return {
        "signup_id": signup.id, "event_id": signup.event_id, "status": signup.status,
        "display_name": signup.display_name, "email": signup.email, "phone": signup.phone,
        "channels": signup.channels, "timezone": signup.timezone, "consent_reminders": signup.consent_reminders,
        "waitlist_position": None, "manage_url": manage_url, "created_at": signup.created_at,
    }


@blp.route("/events/<uuid:event_id>/signups", methods=["POST"])
@blp.arguments(SignupIn)
@blp.response(201, SignupOut)
def register(body: dict[str, Any], event_id: uuid.UUID) -> dict[str, Any]:
    """Register for an event: confirmed while seats remain, else waitlisted."""
    rt = web.current_runtime()
    token = secrets.token_urlsafe(32)
    with rt.sessions.begin() as session:
        event = seats.lock_event(session, event_id)
        if event is None or event.status == "draft":
            raise web.Problem(404, "not_found", "No such event, or it is not open yet.")
        if event.status != "published" or event.starts_at <= utcnow():
            raise web.Problem(409, "registration_closed", f"Registration is closed: the event is {event.status}.")
        if seats.has_free_seat(session, event):
            status = "confirmed"
        elif event.waitlist_enabled:
            status = "waitlisted"
        else:
            raise web.Problem(409, "event_full", "The event is full and has no waitlist.")
        signup = Signup(
            id=uuid.uuid4(), event_id=event.id, status=status, display_name=body["display_name"],
            email=body["email"], phone=body["phone"], channels=sorted(set(body["channels"])),
            timezone=body["timezone"], consent_reminders=body["consent"]["reminders"],
            manage_token_hash=web.hash_secret(token), created_at=utcnow(),
        )
        session.add(signup)
        session.flush()
        manage_url = f"{rt.settings.signup_url}/v1/signups/{signup.id}?token={token}"
        emit(session, rt.source, f"signup.{status}.v1", registration_message(signup, manage_url))
    return {"id": signup.id, "event_id": signup.event_id, "status": signup.status, "waitlist_position": None,
            "manage_token": token, "created_at": signup.created_at}


@blp.route("/signups/<uuid:signup_id>", methods=["GET"])
@blp.response(200, SignupOut(exclude=("manage_token",)))
def get_signup(signup_id: uuid.UUID) -> Signup:
    """A registration, for whoever holds its manage token."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        signup = web.find_by_token_hash(
            lambda h: session.scalar(sa.select(Signup).where(Signup.id == signup_id, Signup.manage_token_hash == h))
        )
        if signup is None:
            raise web.unauthorized("This call needs the registration's manage token.")
        return signup
