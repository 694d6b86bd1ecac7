"""HTTP API of the signup service: registration (verified, or at once), the manage link, availability and
the attendee list.

The seat rule itself is in seats.py, verification in verification.py, the schemas in schemas.py; this
module authorises and answers."""

from __future__ import annotations

import csv
import functools
import io
import uuid
from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from gather_shared import audit, keyset, ratelimit, tokens, web
from gather_shared.db import is_postgresql, utcnow
from gather_shared.errors import Refusal
from gather_shared.vocabulary import LISTED_REGISTRATION_STATUSES, AuditAction, MemberRole, Verification
from gather_signup import details, idempotency, privacy, schemas, seats, verification
from gather_signup.store import AuditEntry, Event, Organizer, Signup

blp = Blueprint("signups", __name__, url_prefix="/v1", description="Registrations")


#: A route called with an organizer's key (gather_shared.web.called_with_key).
called_with_key = functools.partial(web.called_with_key, blp)

_REGISTERED_OUT = schemas.RegisteredOut()  # made once: this dump runs under the event's lock


#: The refusals answered with a status, a code and their own words, nothing more.
PLAIN_REFUSALS: dict[type[Refusal], tuple[int, str]] = {
    seats.EventNotOpen: (404, "not_found"),
    seats.RegistrationClosed: (409, "registration_closed"),
    seats.EventFull: (409, "event_full"),
    seats.AlreadyRegistered: (409, "already_registered"),
    verification.LinkGone: (410, "link_expired"),
    verification.LinkUnknown: (404, "not_found"),
    details.NotChangeable: (409, "registration_cancelled"),
}


def as_problem(refusal: Refusal) -> web.Problem:
    """The rules' refusals as HTTP answers: the one place this service maps them."""
    for kind, (status, code) in PLAIN_REFUSALS.items():
        if isinstance(refusal, kind):
            return web.Problem(status, code, str(refusal))
    match refusal:
        case details.ChannelWithoutContact():
            return web.Problem(422, "validation_error", str(refusal), errors={"channels": [str(refusal)]})
        case idempotency.KeyInvalid():
            errors = {"Idempotency-Key": ["Invalid length."]}
            return web.Problem(422, "validation_error", str(refusal), errors=errors)
        case idempotency.KeyReused():
            errors = {"Idempotency-Key": ["Already used with a different body."]}
            return web.Problem(422, "idempotency_key_reused", str(refusal), errors=errors)
    raise TypeError(f"no answer for the refusal {refusal!r}")


web.answer_refusals(blp, as_problem)


def _place(signup: Signup, waitlist_position: int | None) -> dict[str, Any]:
    """What every answer about one registration starts with (schemas._Place): whose place, where it stands."""
    return {
        "id": signup.id,
        "event_id": signup.event_id,
        "status": signup.status,
        "waitlist_position": waitlist_position,
    }


def registration_view(signup: Signup, waitlist_position: int | None) -> dict[str, Any]:
    return _place(signup, waitlist_position) | {
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


def _taken_at_once(session: Session, event: Event) -> bool:
    """Whether a registration for `event` is taken at once: the event asks no verification, or its own
    organizer adds someone (their key as the bearer token; any other bearer is refused)."""
    if web.bearer_token() is not None:
        organizer = web.bearer_organizer(session, Organizer)
        if organizer is None:
            raise web.unauthorized("Register without a bearer token, or with the event organizer's API key.")
        if organizer.id != event.organizer_id:
            raise web.Problem(403, "forbidden", "Only the event's organizer may add someone to it.")
        return True
    return event.verification == Verification.NONE


def _registered(signup: Signup, waitlist_position: int | None) -> dict[str, Any]:
    """The answer that gives the attendee their place: with the manage token, signed now (never stored)."""
    return _place(signup, waitlist_position) | {
        "manage_token": tokens.manage_token(web.current_runtime().settings.secret_key, signup.id, signup.token_version),
        "created_at": signup.created_at,
    }


#: Events this process found asking for verification, whose public registrations skip
#: seats.register_at_once (it would only find that out again, a wasted statement). A hint, never a rule: the
#: statement checks `verification` itself, and an event wrongly here or missing goes the general way, which
#: is always right.
_ASKS_VERIFICATION: set[uuid.UUID] = set()


@blp.route("/events/<uuid:event_id>/signups", methods=["POST"])
@web.no_store
@ratelimit.limited(ratelimit.PER_ADDRESS, ratelimit.PER_EMAIL, ratelimit.PER_PHONE, ratelimit.PER_EVENT)
@blp.arguments(schemas.SignupIn)
@blp.response(201, schemas.RegisteredOut, description="Taken at once: `verification: none`, or added by the organizer")
@blp.alt_response(
    202, schema=schemas.CheckYourMessagesOut, description="A link went to the contact (`verification: contact`)"
)
def register(body: dict[str, Any], event_id: uuid.UUID) -> Any:
    """Ask for a place. For an event with `verification: contact` (the default) the answer is 202, the same
    whether or not the contact is registered already: a link goes to the contact, and following it makes the
    registration confirmed or waitlisted. Taken at once (201, confirmed while seats remain, else
    waitlisted) for `verification: none`, or with the event organizer's key; those honour
    `Idempotency-Key`, a key being its caller's own (the event's organizer's, or the public's)."""
    rt = web.current_runtime()
    now = utcnow()
    details = {
        "display_name": body["display_name"],
        "email": body["email"],
        "phone": body["phone"],
        "channels": sorted(set(body["channels"])),
        "timezone": body["timezone"],
        "consent_reminders": body["consent"]["reminders"],
    }
    # One statement may take it (seats.register_at_once): a public request, no replay to look up, PostgreSQL.
    plain = web.bearer_token() is None and request.headers.get("Idempotency-Key") is None
    if plain and is_postgresql(rt.engine) and event_id not in _ASKS_VERIFICATION:
        at_once = seats.register_at_once(rt.engine, event_id, details, now)
        if at_once is not None:
            return _registered(*at_once)
    with rt.sessions.begin() as session:
        event = seats.visible_event(seats.lock_event(session, event_id))
        if not _taken_at_once(session, event):
            if len(_ASKS_VERIFICATION) >= 10_000:
                _ASKS_VERIFICATION.clear()  # bounded; the hint is learnt again
            _ASKS_VERIFICATION.add(event_id)
            expires_at = verification.request(session, event, details, now, rt.settings.verify_minutes)
            asked = jsonify(
                schemas.CheckYourMessagesOut().dump({"status": "check_your_messages", "expires_at": expires_at})
            )
            asked.status_code = 202
            return asked
        key = request.headers.get("Idempotency-Key")
        body_hash = idempotency.request_hash(body)
        # A bearer here is the event's organizer's (_taken_at_once refused any other).
        caller = idempotency.caller_of(event.organizer_id if web.bearer_token() is not None else None)
        if key is not None:
            first = idempotency.replay(session, key, caller, event_id, body_hash, now)
            if first is not None:
                signup = session.get_one(Signup, first.signup_id)
                replayed = jsonify(first.response | {"manage_token": _registered(signup, None)["manage_token"]})
                replayed.status_code = 201
                replayed.headers["Idempotent-Replayed"] = "true"
                return replayed
        signup, waitlist_position = seats.register(session, event, details, now)
        answer = _registered(signup, waitlist_position)
        if key is not None:
            idempotency.remember(session, key, caller, body_hash, signup, _REGISTERED_OUT.dump(answer), now)
    return answer


@blp.route("/verifications/<token>", methods=["POST"])
@web.no_store
@ratelimit.limited(ratelimit.PER_ADDRESS)
@blp.response(200, schemas.RegisteredOut)
@blp.alt_response(410, response="DEFAULT_ERROR", description="The link has expired or was used already")
@blp.alt_response(404, response="DEFAULT_ERROR", description="No link has this token")
def verify(token: str) -> dict[str, Any]:
    """Follow the link sent to the contact: the registration becomes confirmed while seats remain, else
    waitlisted, and the answer carries its manage token. An expired or used link is a 410."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        signup, waitlist_position = verification.verify(
            session, rt.settings.secret_key, token, utcnow(), rt.settings.verify_minutes
        )
        return _registered(signup, waitlist_position)


@blp.route("/events/<uuid:event_id>/availability", methods=["GET"])
@blp.response(200, schemas.AvailabilityOut)
def availability(event_id: uuid.UUID) -> seats.Availability:
    """Public counts: how many seats are taken and whether registration is open."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        return seats.availability(seats.visible_event(session.get(Event, event_id)), utcnow())


# --- the manage link --------------------------------------------------------------------------------


def _own_signup(session: Session, signup_id: uuid.UUID) -> Signup:
    """The registration, if the bearer token is its manage token: signed for this registration, at its
    current token_version (erasure bumps it). Else 401, without saying which failed."""
    token = web.bearer_token()
    signup = None
    if token is not None:
        try:
            named, version = tokens.read_manage_token(web.current_runtime().settings.secret_key, token)
        except tokens.InvalidToken:
            named, version = None, None
        if named == signup_id:
            signup = session.get(Signup, signup_id)
            if signup is not None and signup.token_version != version:
                signup = None
    if signup is None:
        raise web.unauthorized("This call needs the registration's manage token as the bearer token.")
    return signup


#: A route for whoever holds the registration's manage token: 401 for anyone else before the body is read
#: (web.checked_first), documented as taking the bearer scheme.
manage_token_only = web.stacked(
    web.problems(blp, 401), blp.doc(security=web.BEARER), web.checked_first(_own_signup, "signup_id")
)


def _managed_view(session: Session, signup: Signup) -> dict[str, Any]:
    event = session.get(Event, signup.event_id)
    return registration_view(signup, seats.waitlist_position(session, signup)) | {"event": event}


@blp.route("/signups/<uuid:signup_id>", methods=["GET"])
@web.no_store
@manage_token_only
@blp.response(200, schemas.ManagedRegistrationOut)
def get_signup(signup_id: uuid.UUID) -> Any:
    """A registration, for whoever holds its manage token (the attendee pages' manage link carries it)."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        return _managed_view(session, _own_signup(session, signup_id))


@blp.route("/signups/<uuid:signup_id>", methods=["PATCH"])
@web.no_store
@manage_token_only
@blp.arguments(schemas.SignupPatch)
@blp.response(200, schemas.ManagedRegistrationOut)
def change_signup(body: dict[str, Any], signup_id: uuid.UUID) -> dict[str, Any]:
    """Change the name, channels, time zone or reminder consent of a registration (not its contact
    details). A cancelled registration is a 409 `registration_cancelled`."""
    rt = web.current_runtime()
    changes = {name: value for name, value in body.items() if name != "consent"}
    if "consent" in body:
        changes["consent_reminders"] = body["consent"]["reminders"]
    with rt.sessions.begin() as session:
        _own_signup(session, signup_id)
        signup = details.change(session, signup_id, changes, utcnow())
        return _managed_view(session, signup)


@blp.route("/signups/<uuid:signup_id>", methods=["DELETE"])
@web.no_store
@manage_token_only
@blp.arguments(schemas.ManageQuery, location="query")
@blp.response(200, schemas.ManagedRegistrationOut)
def cancel_signup(query: dict[str, Any], signup_id: uuid.UUID) -> dict[str, Any]:
    """Cancel a registration (harmless to repeat); a freed seat goes to the longest-waiting at once.
    With `?erase=true` the contact details are also erased, here and in the notifications service."""
    rt = web.current_runtime()
    now = utcnow()
    with rt.sessions.begin() as session:
        _own_signup(session, signup_id)
        signup = seats.cancel(session, signup_id, now)
        if signup is None:  # gone since _own_signup found it
            raise web.Problem(404, "not_found", "No such registration.")
        if query["erase"]:
            privacy.erase(session, signup, now)
        return _managed_view(session, signup)


# --- the organizer's attendee list ------------------------------------------------------------------


#: The 403 of web.organizers_event: the attendee list is the event's organizer's.
NOT_THE_ORGANIZER = "Only the event's organizer may see or change its attendees."

#: 401, 404 or 403 before the body is read (gather_shared.web.checked_first).
event_organizer_only = web.checked_first(
    lambda session, event_id: web.organizers_event(session, Organizer, Event, event_id, NOT_THE_ORGANIZER)
)


@blp.route("/events/<uuid:event_id>/signups/<uuid:signup_id>", methods=["DELETE"])
@web.no_store
@called_with_key(403, 404, whose=event_organizer_only)
@blp.arguments(schemas.RemovalIn)
@blp.response(200, schemas.RemovedOut)
def remove_signup(body: dict[str, Any], event_id: uuid.UUID, signup_id: uuid.UUID) -> dict[str, Any]:
    """Remove someone from the event (its organizer): the registration is cancelled, the attendee is told
    kindly, with the `reason`, and a freed seat goes to the longest-waiting in the same transaction: the
    answer names who got it (`promoted`). A registration of another event is a 404; removing one already
    cancelled changes nothing."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        _, actor, event = web.organizers_event(session, Organizer, Event, event_id, NOT_THE_ORGANIZER)
        removed = seats.remove(session, event.id, signup_id, body["reason"], utcnow())
        if removed is None:
            raise web.Problem(404, "not_found", "The event has no such registration.")
        # The registration's id only: neither its contact nor the reason (which may say something about them).
        audit.record(
            session,
            AuditEntry,
            event.organizer_id,
            actor,
            AuditAction.ATTENDEE_REMOVED,
            removed.signup.id,
            event_id=str(event.id),
        )
        return registration_view(removed.signup, None) | {"promoted": [signup.id for signup in removed.promoted]}


@blp.route("/events/<uuid:event_id>/signups", methods=["GET"])
@web.no_store
@called_with_key(403, 404)
@blp.arguments(schemas.AttendeeQuery, location="query")
@blp.response(200, schemas.AttendeePage)
def attendees(query: dict[str, Any], event_id: uuid.UUID) -> Any:
    """The attendee list, for the members of the event's organizer account: JSON pages in arrival order, or
    with `Accept: text/csv` every registration as one CSV file. Each call is written to the account's audit
    log (who, which event, which format: never the list itself)."""
    rt = web.current_runtime()
    as_csv = request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
    with rt.sessions.begin() as session:
        _, actor, event = web.organizers_event(session, Organizer, Event, event_id, NOT_THE_ORGANIZER)
        audit.record(
            session,
            AuditEntry,
            event.organizer_id,
            actor,
            AuditAction.ATTENDEES_EXPORTED,
            event.id,
            format="csv" if as_csv else "json",
        )
        positions = seats.waitlist_positions(session, event.id)
        # Never a registration whose contact was not verified (pending) or never was (lapsed).
        select = sa.select(Signup).where(Signup.event_id == event.id, Signup.status.in_(LISTED_REGISTRATION_STATUSES))
        if query["status"]:
            select = select.where(Signup.status == query["status"])
        if as_csv:
            everyone = session.scalars(select.order_by(Signup.arrival))
            return attendees_csv(event, [registration_view(s, positions.get(s.id)) for s in everyone])
        page, next_cursor = keyset.page(session.scalars, select, (Signup.arrival,), query["limit"], query["cursor"])
    return {"items": [registration_view(s, positions.get(s.id)) for s in page], "next_cursor": next_cursor}


def _owners_account(session: Session, organizer_id: uuid.UUID) -> None:
    """401 without a key; 403 unless it is the key of an owner of the account `organizer_id`."""
    found = web.bearer_member(session, Organizer)
    if found is None:
        raise web.unauthorized("This call needs an API key of an owner of the account.")
    organizer, actor = found
    if organizer.id != organizer_id:
        raise web.Problem(403, "forbidden", "This account belongs to another organizer.")
    if actor.role != MemberRole.OWNER:
        raise web.Problem(403, "forbidden", "Only an owner of the account may read its audit log.")


#: _owners_account before anything else, as event_organizer_only does for the event's organizer.
owner_only = web.checked_first(_owners_account, "organizer_id")


@blp.route("/organizers/<uuid:organizer_id>/audit", methods=["GET"])
@web.no_store
@called_with_key(403, whose=owner_only)
@blp.arguments(audit.AuditQuery, location="query")
@blp.response(200, audit.AuditPage)
def audit_log(query: dict[str, Any], organizer_id: uuid.UUID) -> dict[str, Any]:
    """The account's audit log of its attendee lists (an owner), oldest first: who exported which event's
    list, or removed which registration, and when. The events service keeps the log of events, members and
    keys at the same path."""
    with web.current_runtime().sessions() as session:
        _owners_account(session, organizer_id)
        return audit.page(session, AuditEntry, organizer_id, query["limit"], query["cursor"])


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
