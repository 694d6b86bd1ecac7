"""HTTP API of the notifications service: the notification log, one-click unsubscribe and the SMS
provider's webhooks (replies and delivery receipts)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from gather_notifications import announcements, i18n, schemas, sms_replies
from gather_notifications.store import (
    EmailOptOut,
    Event,
    Notification,
    Organizer,
    Recipient,
    SmsOptOut,
    contact_hash,
)
from gather_shared import keyset, ratelimit, tokens, web
from gather_shared.config import Settings
from gather_shared.db import utcnow
from gather_shared.vocabulary import Channel, NotificationStatus

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="Notifications")
#: A route called with an organizer's key, or the admin token (gather_shared.web.called_with_key).
called_with_key = functools.partial(web.called_with_key, blp)


def too_many_announcements(refusal: announcements.TooManyAnnouncements) -> Response:
    """The one refusal of this service's rules, as an HTTP answer: 429, and when to try again."""
    response = web.answer(web.Problem(429, "too_many_announcements", str(refusal)))
    response.headers["Retry-After"] = str(refusal.retry_after_seconds)
    return response


blp.register_error_handler(announcements.TooManyAnnouncements, too_many_announcements)

#: Replies that opt a number out of, or back in to, every SMS (the words carriers and Twilio honour).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})


# --- who calls -------------------------------------------------------------------------------------


def organizers_own_event(session: Session, event_id: uuid.UUID) -> tuple[Organizer, Event]:
    """The caller, an organizer, and their event: 401 without a valid key, 404 for an event this service
    does not know, 403 for another organizer's."""
    organizer, _, event = web.organizers_event(
        session, Organizer, Event, event_id, "That event belongs to another organizer."
    )
    return organizer, event


#: 401, 404 or 403 before the body is read (gather_shared.web.checked_first).
event_organizer_only = web.checked_first(organizers_own_event)


# --- the notification log ---------------------------------------------------------------------------


def visible_to_caller(session: Session, settings: Settings, event_id: uuid.UUID | None) -> sa.ColumnElement[bool]:
    """Admin sees every notification; an organizer those of their own events (401/403/404 otherwise)."""
    if web.is_admin(settings):
        return sa.true()
    if event_id is not None:
        organizers_own_event(session, event_id)  # 401, 404 or 403 unless it is the caller's
        return Notification.event_id == event_id
    caller = web.bearer_organizer(session, Organizer)
    if caller is None:
        raise web.unauthorized("This call needs the admin token or an organizer API key.")
    return Notification.event_id.in_(sa.select(Event.id).where(Event.organizer_id == caller.id))


@blp.route("/notifications", methods=["GET"])
@web.no_store
@called_with_key(403, 404)
@blp.arguments(schemas.NotificationQuery, location="query")
@blp.response(200, schemas.NotificationPage)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """The notification log, oldest first: for the event's organizer, or admin."""
    rt = web.current_runtime()
    with rt.sessions() as session:
        query = sa.select(Notification).where(visible_to_caller(session, rt.settings, args["event_id"]))
        for name in ("event_id", "signup_id", "status"):
            if args[name] is not None:
                query = query.where(getattr(Notification, name) == args[name])
        order = (Notification.created_at, Notification.id)
        items, next_cursor = keyset.page(session.scalars, query, order, args["limit"], args["cursor"])
        return {"items": items, "next_cursor": next_cursor}


# --- announcements ----------------------------------------------------------------------------------


@blp.route("/events/<uuid:event_id>/announcements", methods=["POST"])
@called_with_key(403, 404, whose=event_organizer_only)
@blp.arguments(schemas.AnnouncementIn)
@blp.response(202, schemas.AnnouncementOut)
@blp.alt_response(
    429,
    description=f"Past {announcements.MAX_PER_DAY} announcements in 24 hours (`too_many_announcements`, Retry-After).",
)
def announce(body: dict[str, Any], event_id: uuid.UUID) -> dict[str, Any]:
    """Send a message to the event's registrants.

    A short message from the event's organizer to its confirmed and/or waitlisted registrants, on each
    one's channels (kind `announcement`), sent at once: by SMS not in the recipient's quiet hours unless
    the event starts before they end; the online link, even pasted into the text, only ever to confirmed
    attendees. At most 3 per event in any 24 hours."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        organizer, event = organizers_own_event(session, event_id)
        announcement, recipients = announcements.announce(
            session, event, organizer.id, body["subject"], body["body"], body["to"], utcnow()
        )
        return {
            "id": announcement.id,
            "event_id": announcement.event_id,
            "subject": announcement.subject,
            "audience": announcement.audience,
            "recipients": recipients,
            "created_at": announcement.created_at,
        }


# --- one-click unsubscribe (RFC 8058) ---------------------------------------------------------------


@blp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@web.no_store
@ratelimit.limited(ratelimit.PER_ADDRESS, methods=["POST"])
def unsubscribe(token: str) -> Response:
    """Stop reminders and every other non-transactional email to the address this link was sent to.

    POST does it: the RFC 8058 one-click request a mail client makes, or the button of the page. GET (the
    link followed in a browser) only shows that page: mail scanners and link previews fetch the links in
    a message, and must not unsubscribe anyone (the very reason RFC 8058 exists)."""
    rt = web.current_runtime()
    with rt.sessions.begin() as session:
        try:
            signup_id = tokens.read_unsubscribe_token(rt.settings.secret_key, token)
        except tokens.InvalidToken:
            signup_id = None
        recipient = None if signup_id is None else session.get(Recipient, signup_id)
        if recipient is None:
            raise web.Problem(404, "not_found", "This unsubscribe link is not known.")
        # The page speaks the language of the event the reminders were about.
        event = session.get(Event, recipient.event_id)
        lang = i18n.language(event.snapshot.get("language") if event is not None else None)
        page = i18n.environment(lang).get_template("pages/unsubscribe.html")
        if request.method != "POST":  # GET, and HEAD (which Flask answers with GET's view)
            return Response(page.render(done=False, lang=lang), mimetype="text/html")
        if recipient.email is not None:
            session.merge(
                EmailOptOut(address_hash=contact_hash(rt.settings.secret_key, recipient.email), created_at=utcnow())
            )
    return Response(page.render(done=True, lang=lang), mimetype="text/html")


# --- the SMS provider's webhooks --------------------------------------------------------------------


def provider_signature(auth_token: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature of a webhook call: base64 of an HMAC-SHA1, keyed with the account's auth
    token, of the URL called followed by each form field and its value, sorted by name (then value)."""
    payload = url + "".join(f"{name}{value}" for name, value in sorted(form))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def provider_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only the configured SMS provider may call a webhook: with the `file` provider there is none (404);
    with `twilio`, a call without its valid signature is refused (403), before the form is even read by a
    schema. Otherwise anyone could send STOP for any number and silence the messages it should get."""

    @functools.wraps(view)
    def signed(*args: Any, **kwargs: Any) -> Any:
        settings = web.current_runtime().settings
        if settings.sms_provider != "twilio":
            raise web.Problem(404, "not_found", "No SMS provider calls this service.")
        url = settings.notifications_url + request.path
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        given = request.headers.get("X-Twilio-Signature", "").encode("utf-8", "replace")
        expected = provider_signature(settings.sms_auth_token or "", url, list(request.form.items(multi=True)))
        if not settings.sms_auth_token or not hmac.compare_digest(expected.encode(), given):
            raise web.Problem(403, "forbidden", "The request is not signed by the SMS provider.")
        return view(*args, **kwargs)

    return signed


def twiml(reply: str | None) -> Response:
    """The answer to the provider's webhook: TwiML that texts `reply` back, or nothing."""
    message = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response>{message}</Response>', mimetype="application/xml")


@blp.route("/sms/inbound", methods=["POST"])
@ratelimit.limited(ratelimit.WEBHOOK)
@provider_only
@blp.arguments(schemas.InboundSms, location="form")
def sms_inbound(args: dict[str, Any]) -> Response:
    """A reply from an attendee: STOP (and the other opt-out words, CANCEL among them) opts the number out
    of every SMS, START opts it back in; CANCEL and HELP are answered (sms_replies)."""
    rt = web.current_runtime()
    word = args["body"].strip().upper()
    with rt.sessions.begin() as session:
        number_hash = contact_hash(rt.settings.secret_key, args["from_"])
        if word in STOP_WORDS:
            session.merge(SmsOptOut(number_hash=number_hash, created_at=utcnow()))
        elif word in START_WORDS:
            session.execute(sa.delete(SmsOptOut).where(SmsOptOut.number_hash == number_hash))
        reply = sms_replies.answer(session, word, args["from_"], rt.settings.public_url, utcnow())
    return twiml(reply)


#: The provider's final states (Twilio's words, not ours) as the statuses the contract reports; the
#: intermediate ones (queued, sent…) change nothing.
RECEIPT_STATUSES = {
    "delivered": NotificationStatus.DELIVERED,
    "undelivered": NotificationStatus.UNDELIVERED,
    "failed": NotificationStatus.UNDELIVERED,
}


@blp.route("/sms/status", methods=["POST"])
@ratelimit.limited(ratelimit.WEBHOOK)
@provider_only
@blp.arguments(schemas.SmsStatus, location="form")
@blp.arguments(schemas.SmsStatusQuery, location="query")
def sms_status(args: dict[str, Any], query: dict[str, Any]) -> Response:
    """A delivery receipt: `delivered` / `undelivered` settle the notification it is about."""
    rt = web.current_runtime()
    status = RECEIPT_STATUSES.get(args["message_status"])
    if status is not None:
        # Matched by the notification id we put in the callback URL: a receipt can arrive before the
        # sender has recorded the provider's message id.
        which = (
            Notification.id == query["notification"]
            if query["notification"] is not None
            else Notification.provider_id == args["message_sid"]
        )
        error = f"provider error {args['error_code']}" if status == NotificationStatus.UNDELIVERED else None
        with rt.sessions.begin() as session:
            session.execute(
                sa.update(Notification)
                .where(
                    which,
                    Notification.channel == Channel.SMS,
                    Notification.status.in_([NotificationStatus.SENDING, NotificationStatus.SENT]),
                )
                .values(status=status, last_error=error)
            )
    return Response(status=204)
