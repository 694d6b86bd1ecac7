"""HTTP API of the events service: organizers, their members, their events and series, the audit log, the
public listing and calendars.

Access: the admin creates organizers; each member of an organizer account has an API key (bearer token),
stored only as its hash, and a role: owners manage the account's members, keys and audit log, every
member its events. A draft is invisible to anyone but its organizer (404); another organizer's visible
event is 403. Every change of an event, a member or a key is written to the account's audit log in the
transaction of the change. The rules are in domain.py, the messages in announce.py; this module checks
access and answers."""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema
from sqlalchemy.orm import Session

from gather_events import announce, calendar, domain, schemas
from gather_events.store import (
    ORDER,
    AuditEntry,
    Event,
    Member,
    Organizer,
    filtered,
    public_events,
    public_listing,
)
from gather_shared import audit, keyset, organizers, ratelimit, web
from gather_shared.audit import Actor
from gather_shared.errors import Refusal
from gather_shared.vocabulary import LISTED_EVENT_STATUSES, AuditAction, EventStatus, MemberRole, Visibility

blp = Blueprint("events", __name__, url_prefix="/v1", description="Organizers and their events")

CALENDAR_LIMIT = 500  # a subscribed calendar cannot page: the next CALENDAR_LIMIT events
ICS_RESPONSE = {
    "200": {"description": "An RFC 5545 calendar", "content": {"text/calendar": {"schema": {"type": "string"}}}}
}
#: The fields a PATCH may change: everything an organizer writes on creation but the recurrence.
EDITABLE = tuple(schemas.EventFields().fields)


#: Documents the problem+json answers a route gives besides its own (gather_shared.web.problems).
problems = functools.partial(web.problems, blp, schema=schemas.ProblemOut)
#: A route called with an organizer's key, or the admin token (gather_shared.web.called_with_key).
called_with_key = functools.partial(web.called_with_key, blp, schema=schemas.ProblemOut)


def by_viewer(description: str, schema: type[Schema]) -> dict[str, Any]:
    """The documented 200 of a route whose answer depends on who asks (dumped per viewer: dump_for)."""
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def now() -> datetime:
    """The time the rules see; the app factory sets the clock, tests may set another."""
    return current_app.config["GATHER_CLOCK"]()


def invalid(errors: dict[str, list[str]]) -> web.Problem:
    """A 422 shaped like the schemas' own (see gather_shared.web.ProblemApi)."""
    return web.Problem(422, "validation_error", f"Invalid input in: {', '.join(sorted(errors))}", errors=errors)


def as_problem(refusal: Refusal) -> web.Problem:
    """The rules' refusals as HTTP answers: the one place this service maps them."""
    match refusal:
        case domain.TransitionNotAllowed():
            return web.Problem(409, "invalid_transition", str(refusal), current_status=refusal.current)
        case domain.RecurrenceError():
            return invalid({"recurrence": [str(refusal)]})
    raise TypeError(f"no answer for the refusal {refusal!r}")


web.answer_refusals(blp, as_problem)


# --- access -----------------------------------------------------------------------------------------


def current_member(session: Session) -> tuple[Organizer, Actor]:
    """The account whose member's key is the bearer token, and that member; else 401."""
    found = web.bearer_member(session, Organizer)
    if found is None:
        raise web.unauthorized("This call needs an organizer API key.")
    return found


def current_organizer(session: Session) -> Organizer:
    return current_member(session)[0]


def owners_account(session: Session, organizer_id: uuid.UUID) -> tuple[Organizer, Actor]:
    """The account `organizer_id`, if the caller is one of its owners: 401 without a key, 404 for no such
    account, 403 for another organizer's account or a member who is no owner."""
    organizer, actor = current_member(session)
    if organizer.id != organizer_id:
        if session.get(Organizer, organizer_id) is None:
            raise web.Problem(404, "not_found", "No such organizer.")
        raise web.Problem(403, "forbidden", "This account belongs to another organizer.")
    if actor.role != MemberRole.OWNER:
        raise web.Problem(403, "forbidden", "Only an owner of the account may do this.")
    return organizer, actor


#: owners_account before anything else, as organizer_only does for every organizer.
owner_only = web.checked_first(owners_account, "organizer_id")


def audited(
    session: Session,
    organizer: Organizer,
    actor: Actor,
    action: AuditAction,
    subject_id: uuid.UUID | None,
    **details: Any,
) -> None:
    """Write the change into the account's audit log, in the transaction of the change."""
    audit.record(session, AuditEntry, organizer.id, actor, action, subject_id, **details)


def organizer_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """401 before anything else: a caller without a valid key learns nothing, not even what input is valid.
    (Placed under @blp.route, above @blp.arguments, so it runs before the body is parsed.)"""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        with web.current_runtime().sessions() as session:
            current_organizer(session)
        return view(*args, **kwargs)

    return checked


def own_event(session: Session, event_id: uuid.UUID, organizer: Organizer) -> Event:
    """The organizer's event, locked for the change to come; 404 if they may not even know it exists."""
    event = session.get(Event, event_id, with_for_update=True)
    if event is None or (event.organizer_id != organizer.id and event.status == EventStatus.DRAFT):
        raise web.Problem(404, "not_found", "No such event.")
    if event.organizer_id != organizer.id:
        raise web.Problem(403, "forbidden", "This event belongs to another organizer.")
    return event


def own_series(session: Session, series_id: uuid.UUID, organizer: Organizer) -> list[Event]:
    events = list(
        session.scalars(sa.select(Event).where(Event.series_id == series_id).order_by(*ORDER).with_for_update())
    )
    if not events or (
        events[0].organizer_id != organizer.id and all(event.status == EventStatus.DRAFT for event in events)
    ):
        raise web.Problem(404, "not_found", "No such series.")
    if events[0].organizer_id != organizer.id:
        raise web.Problem(403, "forbidden", "This series belongs to another organizer.")
    return events


def visible_to(event: Event, viewer: Organizer | None) -> bool:
    return event.status != EventStatus.DRAFT or (viewer is not None and event.organizer_id == viewer.id)


def dump_for(events: list[Event], viewer: Organizer | None) -> list[dict[str, Any]]:
    """Each event as its viewer may see it: the online link only for its own organizer."""
    return [
        (
            schemas.OrganizerEvent if viewer is not None and event.organizer_id == viewer.id else schemas.PublicEvent
        )().dump(event)
        for event in events
    ]


# --- changes ----------------------------------------------------------------------------------------


def bump(event: Event) -> None:
    event.version += 1
    event.updated_at = now()


def transition(session: Session, event: Event, step: domain.Transition, reason: str | None, actor: Actor) -> None:
    """Move `event` through `step`, announce it and audit it, in the caller's transaction
    (TransitionNotAllowed)."""
    event.status = domain.next_status(step, event.status)
    bump(event)
    announce.transitioned(session, event, step, reason)
    audited(session, event.organizer, actor, AuditAction(f"event.{step.to}"), event.id)


def new_key() -> tuple[str, str]:
    """A new random API key (256 bits) and the hash that is all we keep of it."""
    api_key = "gok_" + secrets.token_urlsafe(32)
    return api_key, web.hash_secret(api_key)


def issue_key(session: Session, organizer: Organizer) -> str:
    """A new key for the account's first owner (the organizer's own), replacing (so revoking) the old one,
    announced to the other services so they can authorise it too (docs/authorisation.md)."""
    api_key, organizer.api_key_hash = new_key()
    session.flush()
    announce.key_issued(session, organizer)
    return api_key


def issue_member_key(session: Session, member: Member) -> str:
    """A new key for a member, replacing (so revoking) their old one; announced like issue_key."""
    api_key, member.api_key_hash = new_key()
    session.flush()
    announce.member_key_issued(session, member)
    return api_key


def organizer_view(organizer: Organizer) -> dict[str, Any]:
    return {"id": organizer.id, "name": organizer.name, "email": organizer.email, "created_at": organizer.created_at}


def with_key(organizer: Organizer, api_key: str) -> dict[str, Any]:
    return organizer_view(organizer) | {"api_key": api_key}


def member_view(organizer: Organizer, member: Member | None) -> dict[str, Any]:
    """A member as the account's owners see them; None: the first owner, whose key is the organizer's."""
    if member is None:
        return {
            "id": organizer.id,
            "organizer_id": organizer.id,
            "name": organizer.name,
            "role": MemberRole.OWNER,
            "first_owner": True,
            "created_at": organizer.created_at,
        }
    return {
        "id": member.id,
        "organizer_id": organizer.id,
        "name": member.name,
        "role": member.role,
        "first_owner": False,
        "created_at": member.created_at,
    }


# --- organizers -------------------------------------------------------------------------------------


@blp.route("/organizers", methods=["POST"])
@web.no_store
@called_with_key(limit=ratelimit.ADMIN, whose=web.admin_only)
@blp.arguments(schemas.OrganizerIn)
@blp.response(201, schemas.OrganizerWithKey)
def create_organizer(body: dict[str, Any]) -> dict[str, Any]:
    """Create an organizer (admin). The API key is shown this once."""
    with web.current_runtime().sessions.begin() as session:
        organizer = Organizer(name=body["name"], email=body["email"], created_at=now())
        session.add(organizer)
        api_key = issue_key(session, organizer)
        audited(session, organizer, audit.ADMIN, AuditAction.KEY_ISSUED, organizer.id)
        return with_key(organizer, api_key)


@blp.route("/organizers/<uuid:organizer_id>/revoke", methods=["POST"])
@called_with_key(404, limit=ratelimit.ADMIN, whose=web.admin_only)
@blp.response(200, schemas.OrganizerOut)
def revoke_keys(organizer_id: uuid.UUID) -> Organizer:
    """Revoke every API key of the organizer's account (admin), its members' too, say when one was stolen:
    they stop working here at once, and in the other services as soon as they receive the news, within
    seconds."""
    with web.current_runtime().sessions.begin() as session:
        organizer = session.get(Organizer, organizer_id, with_for_update=True)
        if organizer is None:
            raise web.Problem(404, "not_found", "No such organizer.")
        organizer.api_key_hash = organizers.revoked_key_hash()
        for member in session.scalars(sa.select(Member).where(Member.organizer_id == organizer.id)):
            member.api_key_hash = organizers.revoked_key_hash()
        announce.key_revoked(session, organizer)
        audited(session, organizer, audit.ADMIN, AuditAction.KEYS_REVOKED, organizer.id)
        return organizer


@blp.route("/organizers/me", methods=["GET"])
@web.no_store
@called_with_key()
@blp.response(200, schemas.WhoAmI)
def who_am_i() -> dict[str, Any]:
    """The organizer account of this API key, and the member who holds it."""
    with web.current_runtime().sessions() as session:
        organizer, actor = current_member(session)
        return organizer_view(organizer) | {"member": {"id": actor.id, "name": actor.name, "role": actor.role}}


@blp.route("/organizers/me/keys", methods=["POST"])
@web.no_store
@called_with_key()
@blp.response(201, schemas.OrganizerWithKey)
def rotate_key() -> dict[str, Any]:
    """Issue a new API key to the member who calls, shown this once; the key used for this call stops
    working at once here, and in the other services as soon as they receive the news."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        if actor.id == organizer.id:
            api_key = issue_key(session, organizer)
        else:
            api_key = issue_member_key(session, session.get_one(Member, actor.id))
        audited(session, organizer, actor, AuditAction.KEY_ISSUED, actor.id)
        return with_key(organizer, api_key)


@blp.route("/organizers/me/events", methods=["GET"])
@called_with_key(whose=organizer_only)
@blp.arguments(schemas.OwnListingArgs, location="query")
@blp.response(200, schemas.OrganizerPage)
def own_events(args: dict[str, Any]) -> dict[str, Any]:
    """The organizer's own events, drafts and past ones included, ordered by start."""
    with web.current_runtime().sessions() as session:
        organizer = current_organizer(session)
        query = filtered(sa.select(Event).where(Event.organizer_id == organizer.id), args)
        if args.get("status"):
            query = query.where(Event.status == args["status"])
        items, next_cursor = keyset.page(session.scalars, query, ORDER, args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}


# --- members and the audit log ----------------------------------------------------------------------


def account_member(session: Session, organizer: Organizer, member_id: uuid.UUID) -> Member | None:
    """The account's member `member_id`, locked for a change; None for its first owner; 404 for anyone else."""
    if member_id == organizer.id:
        return None
    member = session.get(Member, member_id, with_for_update=True)
    if member is None or member.organizer_id != organizer.id:
        raise web.Problem(404, "not_found", "The account has no such member.")
    return member


@blp.route("/organizers/<uuid:organizer_id>/members", methods=["POST"])
@web.no_store
@called_with_key(403, 404, whose=owner_only)
@blp.arguments(schemas.MemberIn)
@blp.response(201, schemas.MemberWithKey)
def add_member(body: dict[str, Any], organizer_id: uuid.UUID) -> dict[str, Any]:
    """Add a member to the account (an owner): their API key is shown this once. An `owner` may do
    everything, including members, keys and the audit log; a `facilitator` runs events, their attendee lists
    and announcements. The key works in the other services as soon as they receive the news."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = owners_account(session, organizer_id)
        member = Member(organizer_id=organizer.id, name=body["name"], role=body["role"], created_at=now())
        session.add(member)
        api_key = issue_member_key(session, member)
        audited(session, organizer, actor, AuditAction.MEMBER_ADDED, member.id, role=member.role)
        return member_view(organizer, member) | {"api_key": api_key}


@blp.route("/organizers/<uuid:organizer_id>/members", methods=["GET"])
@web.no_store
@called_with_key(403, 404)
@blp.response(200, schemas.MemberList)
def list_members(organizer_id: uuid.UUID) -> dict[str, Any]:
    """The account's members (an owner): its first owner, then the others in the order they were added."""
    with web.current_runtime().sessions() as session:
        organizer, _ = owners_account(session, organizer_id)
        members = session.scalars(
            sa.select(Member).where(Member.organizer_id == organizer.id).order_by(Member.created_at, Member.id)
        )
        return {"items": [member_view(organizer, None), *(member_view(organizer, m) for m in members)]}


@blp.route("/organizers/<uuid:organizer_id>/members/<uuid:member_id>", methods=["DELETE"])
@called_with_key(403, 404, 409)
@blp.response(200, schemas.MemberOut)
def remove_member(organizer_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """Remove a member from the account (an owner): their key stops working here at once, and in the other
    services as soon as they receive the news. The first owner stays (409 `first_owner`): an account always
    has an owner."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = owners_account(session, organizer_id)
        member = account_member(session, organizer, member_id)
        if member is None:
            raise web.Problem(409, "first_owner", "The account's first owner cannot be removed.")
        removed = member_view(organizer, member)
        session.delete(member)
        announce.member_removed(session, member)
        audited(session, organizer, actor, AuditAction.MEMBER_REMOVED, member.id)
        return removed


@blp.route("/organizers/<uuid:organizer_id>/members/<uuid:member_id>/keys", methods=["POST"])
@web.no_store
@called_with_key(403, 404)
@blp.response(201, schemas.MemberWithKey)
def reissue_member_key(organizer_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """Revoke a member's key and issue them a new one (an owner), shown this once: say when a key was lost
    or leaked. The old key stops working here at once, and in the other services as soon as they receive
    the news."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = owners_account(session, organizer_id)
        member = account_member(session, organizer, member_id)
        api_key = issue_key(session, organizer) if member is None else issue_member_key(session, member)
        audited(session, organizer, actor, AuditAction.KEY_ISSUED, member_id)
        return member_view(organizer, member) | {"api_key": api_key}


@blp.route("/organizers/<uuid:organizer_id>/audit", methods=["GET"])
@web.no_store
@called_with_key(403, 404, whose=owner_only)
@blp.arguments(audit.AuditQuery, location="query")
@blp.response(200, audit.AuditPage)
def audit_log(query: dict[str, Any], organizer_id: uuid.UUID) -> dict[str, Any]:
    """The account's audit log (an owner), oldest first: who created, changed, published, postponed or
    cancelled which event, added or removed which member, issued or revoked which key, and when. The
    signup service keeps the log of the attendee lists (exports, removals) at the same path."""
    with web.current_runtime().sessions() as session:
        organizer, _ = owners_account(session, organizer_id)
        return audit.page(session, AuditEntry, organizer.id, query["limit"], query["cursor"])


# --- events -----------------------------------------------------------------------------------------


@blp.route("/events", methods=["POST"])
@called_with_key(whose=organizer_only)
@blp.arguments(schemas.EventCreate)
@blp.response(201, schemas.OrganizerEvent)
def create_event(body: dict[str, Any]) -> Event:
    """Create a draft event; with `recurrence`, a series of drafts (the first one is returned, and the
    whole series is at /v1/series/{series_id})."""
    rule = body.pop("recurrence")
    dates = [domain.Occurrence(body["starts_at"], body["ends_at"])]
    if rule:
        dates = domain.occurrences(rule, body["starts_at"], body["ends_at"], body["timezone"])
    series_id = uuid.uuid4() if rule else None
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        created = now()
        events = [
            Event(
                **(body | {"starts_at": date.starts_at, "ends_at": date.ends_at}),
                organizer=organizer,
                series_id=series_id,
                status=EventStatus.DRAFT,
                version=1,
                created_at=created,
                updated_at=created,
            )
            for date in dates
        ]
        session.add_all(events)
        session.flush()
        for event in events:
            audited(session, organizer, actor, AuditAction.EVENT_CREATED, event.id, title=event.title)
        return events[0]


@blp.route("/events", methods=["GET"])
@blp.arguments(schemas.PublicListingArgs, location="query")
@blp.response(200, schemas.PublicPage)
def list_events(args: dict[str, Any]) -> Response:
    """Published and postponed events that have not ended, ordered by start."""
    # Plain rows need no Session (docs/benchmarks.md, "Measurements behind the code"); the items are built by
    # schemas.public_item, not dumped by PublicPage, which still documents them (flask-smorest passes a
    # Response through as it is).
    with web.current_runtime().engine.connect() as connection:
        query = filtered(public_listing(now()), args)
        rows, next_cursor = keyset.page(connection.execute, query, ORDER, args["limit"], args.get("cursor"))
    return jsonify({"items": [schemas.public_item(row) for row in rows], "next_cursor": next_cursor})


@blp.route("/events/<uuid:event_id>", methods=["GET"])
@problems(404)
@blp.doc(responses=by_viewer("The event; `online_url` only for its own organizer", schemas.OrganizerEvent))
def get_event(event_id: uuid.UUID) -> Response:
    """One event: the public view, or the full view for its organizer."""
    with web.current_runtime().sessions() as session:
        event = session.get(Event, event_id)
        viewer = web.bearer_organizer(session, Organizer)
        if event is None or not visible_to(event, viewer):
            raise web.Problem(404, "not_found", "No such event.")
        return jsonify(dump_for([event], viewer)[0])


@blp.route("/events/<uuid:event_id>", methods=["PATCH"])
@called_with_key(403, 404, 409, whose=organizer_only)
@blp.arguments(schemas.EventFields(partial=True))
@blp.response(200, schemas.OrganizerEvent)
def update_event(body: dict[str, Any], event_id: uuid.UUID) -> Event:
    """Change an event. Each change of a non-draft event is announced with the old and new values; a new
    time brings a postponed event back to published. A date of a series changed here is left alone by later
    changes of the whole series (`PATCH /v1/series/{series_id}`)."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        event = own_event(session, event_id, organizer)
        if change(session, event, body, actor) and event.series_id is not None:
            event.edited_alone = True
        return event


def change(session: Session, event: Event, body: dict[str, Any], actor: Actor) -> bool:
    """Apply a PATCH to the locked `event`, announce it (drafts excepted) with the old and new values, and
    audit it; False when it changes nothing (TransitionNotAllowed for a cancelled event, a 422 when the
    result would not be a consistent event)."""
    domain.check_editable(event.status)
    current = {name: getattr(event, name) for name in EDITABLE}
    errors = domain.consistency_errors(current | body)
    if errors:
        raise invalid(errors)
    changes = domain.changes(current, body)
    if domain.republishes(event.status, body):
        changes["status"] = {"old": event.status, "new": domain.next_status(domain.REPUBLISH, event.status)}
        event.status = changes["status"]["new"]
    if not changes:
        return False
    for name in changes.keys() - {"status"}:
        setattr(event, name, body[name])
    bump(event)
    if event.status != EventStatus.DRAFT:
        announce.updated(session, event, changes)
    # The names of the fields only: their values may be long, and the log keeps what happened, not copies.
    audited(session, event.organizer, actor, AuditAction.EVENT_UPDATED, event.id, fields=sorted(changes))
    return True


@blp.route("/events/<uuid:event_id>/publish", methods=["POST"])
@called_with_key(403, 404, 409)
@blp.response(200, schemas.OrganizerEvent)
def publish_event(event_id: uuid.UUID) -> Event:
    """Publish a draft: it becomes visible and open for registration."""
    return event_step(event_id, domain.PUBLISH, None)


def step_with_reason(
    path: str, answer: type[Schema], *statuses: int
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The route of a step an organizer takes with a reason (postponing or cancelling an event, cancelling a
    series): the body, the reason, is read only once the caller is known (organizer_only). It answers with
    `answer`, or 401 or one of the problems `statuses`."""
    return web.stacked(
        blp.route(path, methods=["POST"]),
        called_with_key(*statuses, whose=organizer_only),
        blp.arguments(schemas.Reason),
        blp.response(200, answer),
    )


@step_with_reason("/events/<uuid:event_id>/postpone", schemas.OrganizerEvent, 403, 404, 409)
def postpone_event(body: dict[str, Any], event_id: uuid.UUID) -> Event:
    """Postpone a published event until a new time is set (by PATCH of `starts_at`/`ends_at`)."""
    return event_step(event_id, domain.POSTPONE, body["reason"])


@step_with_reason("/events/<uuid:event_id>/cancel", schemas.OrganizerEvent, 403, 404, 409)
def cancel_event(body: dict[str, Any], event_id: uuid.UUID) -> Event:
    """Cancel a published or postponed event, for good. For one date of a series, too."""
    return event_step(event_id, domain.CANCEL, body["reason"])


def event_step(event_id: uuid.UUID, step: domain.Transition, reason: str | None) -> Event:
    """Apply `step` to the caller's event (TransitionNotAllowed if its status does not allow it)."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        event = own_event(session, event_id, organizer)
        transition(session, event, step, reason, actor)
        return event


# --- series -----------------------------------------------------------------------------------------


@blp.route("/series/<uuid:series_id>", methods=["GET"])
@problems(404)
@blp.doc(
    responses=by_viewer(
        "The dates of a series, ordered by start; drafts only for their organizer", schemas.OrganizerSeries
    )
)
def get_series(series_id: uuid.UUID) -> Response:
    """Every date of a recurring event."""
    with web.current_runtime().sessions() as session:
        viewer = web.bearer_organizer(session, Organizer)
        # An unlisted date is found by its own link only: a series lists it to its organizer alone.
        events = [
            event
            for event in session.scalars(sa.select(Event).where(Event.series_id == series_id).order_by(*ORDER))
            if visible_to(event, viewer)
            and (event.visibility == Visibility.LISTED or (viewer is not None and event.organizer_id == viewer.id))
        ]
        if not events:
            raise web.Problem(404, "not_found", "No such series.")
        return jsonify({"series_id": str(series_id), "items": dump_for(events, viewer)})


@blp.route("/series/<uuid:series_id>", methods=["PATCH"])
@called_with_key(403, 404, whose=organizer_only)
@blp.arguments(schemas.SeriesFields(partial=True))
@blp.response(200, schemas.OrganizerSeries)
def update_series(body: dict[str, Any], series_id: uuid.UUID) -> dict[str, Any]:
    """Change every date of a series that has not started, is not cancelled and was not changed on its own
    (by `PATCH /v1/events/{id}`). Each date's change is announced as its own, with the old and new values,
    to that date's registrants. Dates and times stay each date's own (change one with its event's PATCH).
    When the change would make any of those dates inconsistent (say, `format: online` without an
    `online_url`), nothing changes: 422 naming the field."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        events = own_series(session, series_id, organizer)
        for event in events:
            if event.starts_at > now() and not event.edited_alone and event.status != EventStatus.CANCELLED:
                change(session, event, body, actor)
        return {"series_id": series_id, "items": events}


@blp.route("/series/<uuid:series_id>/publish", methods=["POST"])
@called_with_key(403, 404)
@blp.response(200, schemas.OrganizerSeries)
def publish_series(series_id: uuid.UUID) -> dict[str, Any]:
    """Publish every draft date of a series that has not ended."""
    return series_step(series_id, domain.PUBLISH, None)


@step_with_reason("/series/<uuid:series_id>/cancel", schemas.OrganizerSeries, 403, 404)
def cancel_series(body: dict[str, Any], series_id: uuid.UUID) -> dict[str, Any]:
    """Cancel every published or postponed date of a series that has not ended. (One date: cancel that
    event.)"""
    return series_step(series_id, domain.CANCEL, body["reason"])


def series_step(series_id: uuid.UUID, step: domain.Transition, reason: str | None) -> dict[str, Any]:
    """Apply `step` to each date of the series it applies to; past dates and the others stay as they are."""
    with web.current_runtime().sessions.begin() as session:
        organizer, actor = current_member(session)
        events = own_series(session, series_id, organizer)
        for event in events:
            if event.status in step.allowed_from and event.ends_at > now():
                transition(session, event, step, reason, actor)
        return {"series_id": series_id, "items": events}


# --- calendars --------------------------------------------------------------------------------------


@blp.route("/events/<uuid:event_id>/calendar.ics", methods=["GET"])
@problems(404)
@blp.doc(responses=ICS_RESPONSE)
def event_calendar(event_id: uuid.UUID) -> Response:
    """One event as an RFC 5545 calendar (never with the online link)."""
    with web.current_runtime().sessions() as session:
        event = session.get(Event, event_id)
        if event is None or event.status == EventStatus.DRAFT:
            raise web.Problem(404, "not_found", "No such event.")
        return ics_response(calendar.ics([event]), f"{event.id}.ics")


@blp.route("/calendar.ics", methods=["GET"])
@blp.arguments(schemas.ListingArgs, location="query")
@blp.doc(responses=ICS_RESPONSE)
def listing_calendar(args: dict[str, Any]) -> Response:
    """The listing as an RFC 5545 calendar to subscribe to (same filters). Cancelled events that have not
    ended stay in it, marked cancelled, so that subscribed calendars learn of the cancellation."""
    with web.current_runtime().sessions() as session:
        query = filtered(public_events(now(), (*LISTED_EVENT_STATUSES, EventStatus.CANCELLED)), args)
        events = list(session.scalars(query.order_by(*ORDER).limit(CALENDAR_LIMIT)))
        return ics_response(calendar.ics(events), "gather.ics")


def ics_response(body: bytes, filename: str) -> Response:
    return Response(body, mimetype="text/calendar", headers={"Content-Disposition": f'inline; filename="{filename}"'})
