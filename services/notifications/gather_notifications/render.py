"""Turning a notification into the words the attendee reads: Jinja2 templates per (kind, channel) under
templates/, in the event's language (i18n), autoescaped HTML, multipart email with its calendar
invitation, SMS that fit in two segments. Nothing rendered is stored.

The links are signed here, as the message is rendered (gather_shared.tokens): verify, manage and
unsubscribe, all under GATHER_PUBLIC_URL (the attendee pages). They live only in the message sent."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from email import charset, policy
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date

from gather_notifications import i18n, rules
from gather_notifications.invitation import invitation
from gather_notifications.store import Announcement, Event, Notification, OrganizerNotice, Recipient
from gather_shared import tokens
from gather_shared.config import Settings
from gather_shared.vocabulary import ONLINE_FORMATS, EventFormat, NotificationKind, RegistrationStatus

#: The email package's compat32 API, not EmailMessage: its default policy parses every header it is given
#: and refolds every header it writes, which doubles the CPU of building an email, and the sender is
#: CPU-bound in a fan-out (docs/benchmarks.md, "Measurements behind the code"). Headers are left unfolded
#: up to SMTP's line limit, so a long List-Unsubscribe URL stays on its header's line; the subject is
#: encoded and folded by Header.
EMAIL_POLICY = policy.compat32.clone(max_line_length=998)
#: UTF-8 bodies as quoted-printable: 7-bit safe through any SMTP server, and the ASCII stays readable.
UTF8_QP = charset.Charset("utf-8")
UTF8_QP.body_encoding = charset.QP
#: An invitation as base64: its lines must keep their CRLF ends exactly (RFC 5545).
UTF8_BASE64 = charset.Charset("utf-8")


@dataclass(frozen=True)
class Details:
    """What a notification says beyond the event and its recipient: the announcement it carries, what
    the event update it reports changed ({field: {old, new}}, as `event.updated.v1` said)."""

    announcement: Announcement | None = None
    changes: dict[str, Any] | None = None


def _(message: str) -> str:
    """Marks a message for extraction (pybabel): translated where it is used, in the message's language."""
    return message


#: The text a recipient who may not have the online link reads in its place, in an organizer's message.
LINK_WITHHELD = _("[the online link goes to confirmed attendees]")


def one_click_unsubscribe_url(settings: Settings, recipient: Recipient) -> str:
    """The List-Unsubscribe header's link: the notifications API itself, which a mail client POSTs to
    without a page (RFC 8058); the link in the body leads to the attendee pages' confirmation page."""
    token = tokens.unsubscribe_token(settings.secret_key, recipient.signup_id)
    return f"{settings.notifications_url}/v1/unsubscribe/{token}"


def local_zone(recipient: Recipient, event: Event) -> ZoneInfo:
    """The attendee's time zone, else the event's."""
    for name in (recipient.timezone, event.snapshot["timezone"]):
        try:
            return ZoneInfo(name or "")
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def _place(event_format: str, venue: dict[str, Any] | None, gettext: Any) -> tuple[str, str]:
    """Where the event is, in full and short (for an SMS); never the online link."""
    venue = venue if isinstance(venue, dict) else {}
    if event_format == EventFormat.ONLINE:
        return gettext("Online"), gettext("online")
    line = ", ".join(v for v in (venue.get(k) for k in ("name", "address", "city", "postcode")) if v)
    short = ", ".join(v for v in (venue.get("name"), venue.get("city")) if v) or gettext("see details")
    return line + (gettext(" (and online)") if event_format in ONLINE_FORMATS else ""), short


def what_changed(
    changes: dict[str, Any], snap: dict[str, Any], zone: ZoneInfo, confirmed: bool, lang: str
) -> list[dict[str, str]]:
    """The lines of a change notice, old → new: the time (in the attendee's zone), the place, and to a
    confirmed attendee the online link. Each {what, label, old, new, old_short, new_short}; a change that reads
    the same both ways (a venue's field written differently) makes no line."""
    gettext = i18n.translations(lang).gettext

    def before(name: str) -> Any:
        return changes[name]["old"] if name in changes else snap[name]

    lines = []
    if {"starts_at", "ends_at", "timezone"} & changes.keys():
        old, new = datetime.fromisoformat(before("starts_at")), datetime.fromisoformat(snap["starts_at"])
        lines.append(
            {
                "what": "time",
                "label": gettext("When"),
                "old": i18n.when(old, zone, lang),
                "new": i18n.when(new, zone, lang),
                "old_short": i18n.when_short(old, zone, lang),
                "new_short": i18n.when_short(new, zone, lang),
            }
        )
    if {"format", "venue"} & changes.keys():
        old_place, old_short = _place(before("format"), before("venue"), gettext)
        new_place, new_short = _place(snap["format"], snap.get("venue"), gettext)
        lines.append(
            {
                "what": "place",
                "label": gettext("Where"),
                "old": old_place,
                "new": new_place,
                "old_short": old_short,
                "new_short": new_short,
            }
        )
    if confirmed and "online_url" in changes:
        old_url, new_url = before("online_url") or gettext("none"), snap["online_url"] or gettext("none")
        lines.append(
            {
                "what": "link",
                "label": gettext("Online link"),
                "old": old_url,
                "new": new_url,
                # An SMS gives only the new link: two links and the manage link would not fit in two segments.
                "old_short": "",
                "new_short": new_url,
            }
        )
    return [line for line in lines if line["old"] != line["new"]]


def context(
    settings: Settings, notification: Notification, recipient: Recipient, event: Event, details: Details
) -> dict[str, Any]:
    snap = event.snapshot
    lang = i18n.language(snap.get("language"))
    gettext = i18n.translations(lang).gettext
    zone = local_zone(recipient, event)
    starts = datetime.fromisoformat(snap["starts_at"])
    online = snap["format"] in ONLINE_FORMATS
    confirmed = recipient.status == RegistrationStatus.CONFIRMED
    # The link is for confirmed attendees only: never the waitlisted, never the cancelled.
    online_url = snap["online_url"] if online and confirmed else None
    place, place_short = _place(snap["format"], snap.get("venue"), gettext)
    if snap["format"] == EventFormat.ONLINE:
        place_short = online_url or place_short
    announcement = details.announcement
    message_subject, message = (announcement.subject, announcement.body) if announcement else ("", "")
    if snap["online_url"] and not confirmed:
        # An organizer may paste the link into a message to everyone: only the confirmed may read it, nor
        # anything else on the meeting's host (the link written without https://, in capitals, or a new one).
        withheld = gettext(LINK_WITHHELD)
        message_subject = without_meeting_links(message_subject, snap["online_url"], withheld)
        message = without_meeting_links(message, snap["online_url"], withheld)
    return {
        "lang": lang,
        "kind": notification.kind,
        "name": recipient.display_name,
        "title": snap["title"],
        "organizer": snap["organizer_name"],
        "when": i18n.when(starts, zone, lang),
        "when_short": i18n.when_short(starts, zone, lang),
        "place": place,
        "place_short": place_short,
        "online_url": online_url,
        "changes": what_changed(details.changes or {}, snap, zone, confirmed, lang),
        "waitlist_position": recipient.waitlist_position,
        "message_subject": message_subject,
        "message": message,
        "resources": snap["resources"] if notification.kind == NotificationKind.REMINDER else [],
        "reason": (
            recipient.removal_reason if notification.kind == NotificationKind.SIGNUP_REMOVED else event.status_reason
        ),
        "manage_url": tokens.manage_url(
            settings.public_url, settings.secret_key, recipient.signup_id, recipient.token_version
        ),
        "verify_url": (
            tokens.verify_url(settings.public_url, settings.secret_key, recipient.signup_id)
            if notification.kind == NotificationKind.VERIFY_CONTACT
            else None
        ),
        "verify_minutes": settings.verify_minutes,
        "unsubscribe_url": (
            tokens.unsubscribe_url(settings.public_url, settings.secret_key, recipient.signup_id)
            if notification.kind in rules.NON_TRANSACTIONAL
            else None
        ),
    }


def _block(template_name: str, block: str, ctx: dict[str, Any]) -> str:
    template = i18n.environment(ctx["lang"]).get_template(template_name)
    return "".join(template.blocks[block](template.new_context(ctx))).strip()


def email(
    settings: Settings,
    notification: Notification,
    recipient: Recipient,
    to: str,
    event: Event,
    now: datetime,
    details: Details = Details(),
) -> Message:
    """The email of `notification` to `recipient` at address `to` (sender.contact)."""
    ctx = context(settings, notification, recipient, event, details)
    kind_template = f"email/{notification.kind}.txt"
    ctx["subject"] = _block(kind_template, "subject", ctx)
    ctx["intro"] = _block(kind_template, "intro", ctx)
    message = MIMEMultipart("alternative", policy=EMAIL_POLICY)
    for layout, subtype in (("email/layout.txt", "plain"), ("email/layout.html", "html")):
        message.attach(_text_part(i18n.environment(ctx["lang"]).get_template(layout).render(ctx), subtype))
    invite = invitation(notification.kind, recipient, to, event, settings.email_from, now, ctx["lang"])
    if invite is not None:
        # The text, then the invitation as an attachment that calendar-aware mail clients offer to add.
        method, ics = invite
        text, message = message, MIMEMultipart("mixed", policy=EMAIL_POLICY)
        message.attach(text)
        part = MIMENonMultipart("text", "calendar", policy=EMAIL_POLICY, charset="utf-8", method=method)
        part.set_payload(ics.decode(), UTF8_BASE64)
        part.add_header("Content-Disposition", "attachment", filename="invite.ics")
        message.attach(part)
    # RFC 2047 words of at most 75 characters for a non-ASCII title, folded; an ASCII one stays as it is.
    message["Subject"] = Header(ctx["subject"], header_name="Subject").encode()
    message["From"] = settings.email_from
    message["To"] = to  # the bare address: a display name may be a pseudonym they share with no one
    message["Date"] = format_datetime(now)
    message["Content-Language"] = ctx["lang"]
    # The same notification always has the same Message-ID, so a resend can be recognised as one.
    message["Message-ID"] = f"<{notification.id}@{urlparse(settings.notifications_url).hostname or 'gather'}>"
    if ctx["unsubscribe_url"]:
        message["List-Unsubscribe"] = f"<{one_click_unsubscribe_url(settings, recipient)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    return message


def organizer_email(settings: Settings, notice: OrganizerNotice, event: Event, to: str, now: datetime) -> Message:
    """The email of an organizer's digest or waitlist alert (gather_notifications.digest), in the event's
    language: plain text, counts only. No link: nothing in it is anyone's to follow but the organizer's API."""
    snap = event.snapshot
    lang = i18n.language(snap.get("language"))
    zone = ZoneInfo(snap["timezone"])
    figures = dict(notice.figures)
    if "day" in figures:
        figures["day"] = format_date(
            date.fromisoformat(figures["day"]), i18n.DATE_PATTERNS[lang][0], i18n.LOCALES[lang]
        )
    ctx = {
        "lang": lang,
        "title": snap["title"],
        "organizer": snap["organizer_name"],
        "when": i18n.when(datetime.fromisoformat(snap["starts_at"]), zone, lang),
        **figures,
    }
    template = f"email/{notice.kind}.txt"
    message = _text_part(_block(template, "body", ctx) + "\n", "plain")
    message["Subject"] = Header(_block(template, "subject", ctx), header_name="Subject").encode()
    message["From"] = settings.email_from
    message["To"] = to
    message["Date"] = format_datetime(now)
    message["Content-Language"] = lang
    message["Message-ID"] = f"<{notice.id}@{urlparse(settings.notifications_url).hostname or 'gather'}>"
    return message


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    # What MIMEText(text, subtype, UTF8_QP) builds; MIMEText is declared to take a charset's name only, and
    # by name UTF-8 would be base64, not the quoted-printable that keeps a text part readable.
    part = MIMENonMultipart("text", subtype, policy=EMAIL_POLICY, charset="utf-8")
    part.set_payload(text, UTF8_QP)
    return part


def sms(
    settings: Settings, notification: Notification, recipient: Recipient, event: Event, details: Details = Details()
) -> str:
    ctx = context(settings, notification, recipient, event, details)
    # Dates and labels in GSM-7 letters too (sáb → sab), as the SMS's own words are (i18n.environment);
    # what an organizer wrote (a venue's name) stays as written.
    ctx["when_short"] = rules.gsm7_letters(ctx["when_short"])
    ctx["changes"] = [
        change
        | {
            key: rules.gsm7_letters(change[key])
            for key in ("label", "old_short", "new_short")
            if key == "label" or change["what"] == "time"
        }
        for change in ctx["changes"]
    ]
    template = i18n.environment(ctx["lang"], sms=True).get_template(f"sms/{notification.kind}.txt")
    if notification.kind == NotificationKind.ANNOUNCEMENT:
        # The organizer's words are what may be shortened (the email has them whole); the title stays.
        return rules.fit_sms(lambda message: template.render(ctx | {"message": message}).strip(), ctx["message"])
    return rules.fit_sms(lambda title: template.render(ctx | {"title": title}).strip(), ctx["title"])


@functools.lru_cache(maxsize=256)
def without_meeting_links(text: str, online_url: str, replacement: str) -> str:
    """`text` with every mention of the meeting's link, or of its host, replaced by `replacement`: worked
    out once per announcement and language, not once per recipient, as the pattern is costly on a crafted
    text (docs/benchmarks.md, "Measurements behind the code")."""
    return meeting_links(online_url).sub(replacement, text)


def meeting_links(online_url: str) -> re.Pattern[str]:
    """Every mention of the online meeting's link, or of any other address on its host, in a text."""
    host = urlparse(online_url).hostname
    if not host:
        return re.compile(re.escape(online_url))
    return re.compile(rf"(?:[a-z][a-z0-9+.-]*://)?(?:[\w-]+\.)*{re.escape(host)}(?::\d+)?[^\s<>\"']*", re.IGNORECASE)
