"""HTTP API of the signup service: registration, the manage link, availability and the attendee list.

The seat rule itself is in seats.py; this module validates, authorises and answers."""

from __future__ import annotations

import base64
import csv
import io
import unicodedata
import uuid
from typing import Any

import phonenumbers
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import Response, jsonify, request
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy.orm import Session

from gather_shared import web
from gather_shared.db import utcnow
from gather_signup import idempotency, privacy, seats
from gather_signup.status import CANCELLED, CONFIRMED, WAITLISTED
from gather_signup.store import Event, Organizer, Signup

blp = Blueprint("signups", __name__, url_prefix="/v1", description="Registrations")

CHANNELS = ["email", "sms"]
MAX_PAGE = 100


# --- input ------------------------------------------------------------------------------------------


class Name(fields.String):
    """A name or pseudonym: any text a person types, but not what PostgreSQL cannot store (NUL characters,
    lone surrogates that JSON's \\u escapes can carry) nor other control characters."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
            raise ValidationError("Must be plain text, without control characters.")
        return text.strip()


class EmailAddress(fields.String):
    """An email address, checked for syntax (not deliverability) and normalised (domain lower-cased)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValidationError(str(exc)) from exc


class PhoneNumber(fields.String):
    """A phone number in international form (+44 20 7946 0958, spaces allowed), normalised to E.164."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError("Not a phone number in international form, e.g. +447911123456.") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Not a valid phone number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _is_timezone(name: str) -> None:
    if not web.is_time_zone(name):
        raise ValidationError("Not an IANA time zone name, e.g. Europe/London.")


class ConsentSchema(Schema):
    reminders = fields.Boolean(load_default=False)


class SignupIn(Schema):
    class Meta:
        unknown = EXCLUDE

    display_name = Name(required=True, validate=validate.Length(min=1, max=60, error="Give 1 to 60 characters."))
    email = EmailAddress(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone = PhoneNumber(load_default=None, allow_none=True)
    channels = fields.List(
        fields.String(validate=validate.OneOf(CHANNELS)), required=True, validate=validate.Length(min=1)
    )
    timezone = fields.String(load_default=None, allow_none=True, validate=_is_timezone)
    consent = fields.Nested(ConsentSchema, load_default=lambda: {"reminders": False})

    @validates_schema
    def _contacts(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email") and not data.get("phone"):
            raise ValidationError("Give an email address or a phone number.", "email")
        channels = data.get("channels", [])
        if "email" in channels and not data.get("email"):
            raise ValidationError("The email channel needs an email address.", "channels")
        if "sms" in channels and not data.get("phone"):
            raise ValidationError("The sms channel needs a phone number.", "channels")


class ManageQuery(Schema):
    erase = fields.Boolean(load_default=False)


class AttendeeQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf([CONFIRMED, WAITLISTED, CANCELLED]))


# --- output -----------------------------------------------------------------------------------------


class RegisteredOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    status = fields.String()
    waitlist_position = fields.Integer(allow_none=True)
    manage_token = fields.String()
    created_at = fields.AwareDateTime()


_REGISTERED_OUT = RegisteredOut()  # made once: this dump runs under the event's lock


class RegistrationOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    status = fields.String()
    waitlist_position = fields.Integer(allow_none=True)
    display_name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    channels = fields.List(fields.String())
    timezone = fields.String(allow_none=True)
    consent = fields.Nested(ConsentSchema)
    erased = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class EventSummary(Schema):
    title = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    status = fields.String()


class ManagedRegistrationOut(RegistrationOut):
    event = fields.Nested(EventSummary)


class AttendeePage(Schema):
    items = fields.List(fields.Nested(RegistrationOut))
    next_cursor = fields.String(allow_none=True)


class AvailabilityOut(Schema):
    capacity = fields.Integer(allow_none=True)
    confirmed = fields.Integer()
    waitlisted = fields.Integer()
    remaining = fields.Integer(allow_none=True)
    waitlist_enabled = fields.Boolean()
    accepting = fields.Boolean()


def registration_view(signup: Signup, waitlist_position: int | None) -> dict[str, Any]:
    return {
        "id": signup.id,
        "event_id": signup.event_id,
        "status": signup.status,
        "waitlist_position": waitlist_position,
        "display_name": signup.display_name,
        "email": signup.email,
        "phone": signup.phone,
        "channels": signup.channels,
        "timezone": signup.timezone,
        "consent": {"reminders": signup.consent_reminders},
        "erased": signup.erased_at is not None,
        "created_at": signup.created_at,
        "updated_at": signup.updated_at,
    }


# --- registering ------------------------------------------------------------------------------------


@blp.route("/events/<uuid:event_id>/signups", methods=["POST"])
@blp.arguments(SignupIn)
@blp.response(201, RegisteredOut)
def register(body: dict[str, Any], event_id: uuid.UUID) -> Any:
    """Register for an event: confirmed while seats remain, else waitlisted. Honours `Idempotency-Key`."""
    rt = web.current_runtime()
    now = utcnow()
    key = request.headers.get("Idempotency-Key")
    body_hash = idempotency.request_hash(body)
    details = {
        "display_name": body["display_name"],
        "email": body["email"],
        "phone": body["phone"],
        "channels": sorted(set(body["channels"])),
        "timezone": body["timezone"],
        "consent_reminders": body["consent"]["reminders"],
    }
    token = idempotency.new_manage_token()
    with rt.sessions.begin() as session:
        event = seats.visible_event(seats.lock_event(session, event_id))
        if key is not None:
            first = idempotency.replay(session, key, event_id, body_hash, now)
            if first is not None:
                replayed = jsonify(first)
                replayed.status_code = 201
                replayed.headers["Idempotent-Replayed"] = "true"
                return replayed
        signup = seats.register(session, event, details, token, now)
        answer = {
            "id": signup.id,
            "event_id": signup.event_id,
            "status": signup.status,
            "waitlist_position": seats.position_on_arrival(event, signup),
            "manage_token": token,
            "created_at": signup.created_at,
        }
        if key is not None:
            idempotency.remember(session, key, body_hash, signup, _REGISTERED_OUT.dump(answer), now)
    return answer


@blp.route("/events/<uuid:event_id>/availability", methods=["GET"])
@blp.response(200, AvailabilityOut)
def availability(event_id: uuid.UUID) -> dict[str, Any]:
    """Public counts: how many seats are taken and whether registration is open."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        event = seats.visible_event(session.get(Event, event_id))
    remaining = None if event.capacity is None else max(0, event.capacity - event.confirmed)
    return {
        "capacity": event.capacity,
        "confirmed": event.confirmed,
        "waitlisted": event.waitlisted,
        "remaining": remaining,
        "waitlist_enabled": event.waitlist_enabled,
        "accepting": seats.is_accepting(event, utcnow()) and (remaining != 0 or event.waitlist_enabled),
    }


# --- the manage link --------------------------------------------------------------------------------


def _own_signup(session: Session, signup_id: uuid.UUID) -> Signup:
    """The registration, if the bearer token is its manage token (else 401, without saying which failed)."""
    signup = web.find_by_token_hash(
        lambda token_hash: session.scalar(
            sa.select(Signup).where(Signup.id == signup_id, Signup.manage_token_hash == token_hash)
        )
    )
    if signup is None:
        raise web.unauthorized("This call needs the registration's manage token as the bearer token.")
    return signup


def _managed_view(session: Session, signup: Signup) -> dict[str, Any]:
    event = session.get(Event, signup.event_id)
    return registration_view(signup, seats.waitlist_position(session, signup)) | {"event": event}


def _wants_page() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


@blp.route("/signups/<uuid:signup_id>", methods=["GET"])
@blp.response(200, ManagedRegistrationOut)
def get_signup(signup_id: uuid.UUID) -> Any:
    """A registration, for whoever holds its manage token. A browser (Accept: text/html) gets the manage
    page instead: the e-mailed link opens it, and it calls this API with the token from the link."""
    if _wants_page() and web.bearer_token() is None:
        return manage_page()
    rt = web.current_runtime()
    with rt.sessions() as session:
        return _managed_view(session, _own_signup(session, signup_id))


@blp.route("/signups/<uuid:signup_id>", methods=["DELETE"])
@blp.arguments(ManageQuery, location="query")
@blp.response(200, ManagedRegistrationOut)
def cancel_signup(query: dict[str, Any], signup_id: uuid.UUID) -> dict[str, Any]:
    """Cancel a registration (harmless to repeat); a freed seat goes to the longest-waiting at once.
    With `?erase=true` the contact details are also erased, here and in the notifications service."""
    rt = web.current_runtime()
    now = utcnow()
    with rt.sessions.begin() as session:
        _own_signup(session, signup_id)
        signup = seats.cancel(session, signup_id, now)
        if query["erase"]:
            privacy.erase(session, signup, now)
        return _managed_view(session, signup)


MANAGE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your registration · Gather</title>
<style>body{font:1.1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
button{font:inherit;padding:.5rem 1rem}</style></head>
<body><main><h1>Your registration</h1><p id="state" role="status">Loading…</p>
<p><button id="cancel" hidden>Cancel my registration</button></p></main>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const state = document.getElementById("state"), button = document.getElementById("cancel");
function show(r) {
  const when = new Date(r.event.starts_at).toLocaleString();
  const what = {confirmed: "You have a seat at", waitlisted: "You are number " + r.waitlist_position +
                " on the waitlist for", cancelled: "Your registration is cancelled for"}[r.status];
  state.textContent = what + " \u201c" + r.event.title + "\u201d, " + when + ".";
  button.hidden = r.status === "cancelled";
}
async function call(method) {
  const response = await fetch(location.pathname, {method, headers: {
    "Authorization": "Bearer " + token, "Accept": "application/json"}});
  if (!response.ok) { state.textContent = "This link is not valid. Please use the link from your email."; return; }
  show(await response.json());
}
button.addEventListener("click", () => { if (confirm("Cancel your registration?")) call("DELETE"); });
if (token) call("GET"); else state.textContent = "Please open the link from your confirmation email.";
</script></body></html>
"""


def manage_page() -> Response:
    """The page behind the e-mailed manage link. Static: it holds no data until the script, with the token
    from the link's fragment, asks the API."""
    response = Response(MANAGE_PAGE, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- the organizer's attendee list ------------------------------------------------------------------


def _organizers_event(session: Session, event_id: uuid.UUID) -> Event:
    organizer = web.find_by_token_hash(
        lambda token_hash: session.scalar(sa.select(Organizer).where(Organizer.api_key_hash == token_hash))
    )
    if organizer is None:
        raise web.unauthorized("This call needs the event organizer's API key.")
    event = session.get(Event, event_id)
    if event is None:
        raise web.Problem(404, "not_found", "No such event.")
    if event.organizer_id != organizer.id:
        raise web.Problem(403, "forbidden", "Only the event's organizer may see its attendees.")
    return event


def _encode_cursor(arrival: int) -> str:
    return base64.urlsafe_b64encode(str(arrival).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise web.Problem(422, "validation_error", "Invalid cursor.", errors={"cursor": ["Invalid cursor."]}) from exc


@blp.route("/events/<uuid:event_id>/signups", methods=["GET"])
@blp.arguments(AttendeeQuery, location="query")
@blp.response(200, AttendeePage)
def attendees(query: dict[str, Any], event_id: uuid.UUID) -> Any:
    """The attendee list, for the event's organizer: JSON pages in arrival order, or with `Accept: text/csv`
    every registration as one CSV file."""
    rt = web.current_runtime()
    as_csv = request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
    with rt.sessions() as session:
        event = _organizers_event(session, event_id)
        positions = seats.waitlist_positions(session, event.id)
        select = sa.select(Signup).where(Signup.event_id == event.id).order_by(Signup.arrival)
        if query["status"]:
            select = select.where(Signup.status == query["status"])
        if as_csv:
            return attendees_csv(event, [registration_view(s, positions.get(s.id)) for s in session.scalars(select)])
        if query["cursor"]:
            select = select.where(Signup.arrival > _decode_cursor(query["cursor"]))
        page = list(session.scalars(select.limit(query["limit"] + 1)))
    more = len(page) > query["limit"]
    page = page[: query["limit"]]
    return {
        "items": [registration_view(s, positions.get(s.id)) for s in page],
        "next_cursor": _encode_cursor(page[-1].arrival) if more else None,
    }


CSV_COLUMNS = [
    "id",
    "status",
    "waitlist_position",
    "display_name",
    "email",
    "phone",
    "channels",
    "consent_reminders",
    "created_at",
]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheet programs: names and emails are typed by the
    # public, so neutralise them (OWASP "CSV injection"). Phones are E.164 digits, safe as they are.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def attendees_csv(event: Event, rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["id"],
                row["status"],
                row["waitlist_position"] or "",
                _cell(row["display_name"]),
                _cell(row["email"]),
                row["phone"] or "",
                " ".join(row["channels"]),
                row["consent"]["reminders"],
                row["created_at"].isoformat(),
            ]
        )
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="attendees-{event.id}.csv"'
    return response
