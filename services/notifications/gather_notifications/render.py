"""Turning a notification into the words the attendee reads: Jinja2 templates per (kind, channel) under
templates/, autoescaped HTML, multipart email, SMS that fit in two segments. Nothing rendered is stored.

The links are signed here, as the message is rendered (gather_shared.tokens): verify, manage and
unsubscribe, all under GATHER_PUBLIC_URL (the attendee pages). They live only in the message sent."""

from __future__ import annotations

from datetime import datetime
from email import charset, policy
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gather_notifications import rules
from gather_notifications.store import Event, Notification, Recipient
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

templates = Environment(
    loader=PackageLoader("gather_notifications"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


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


def context(settings: Settings, notification: Notification, recipient: Recipient, event: Event) -> dict[str, Any]:
    snap = event.snapshot
    starts = datetime.fromisoformat(snap["starts_at"]).astimezone(local_zone(recipient, event))
    online = snap["format"] in ONLINE_FORMATS
    # The link is for confirmed attendees only: never the waitlisted, never the cancelled.
    online_url = snap["online_url"] if online and recipient.status == RegistrationStatus.CONFIRMED else None
    venue = snap.get("venue") or {}
    venue_line = ", ".join(v for v in (venue.get(k) for k in ("name", "address", "city", "postcode")) if v)
    if snap["format"] == EventFormat.ONLINE:
        place, place_short = "Online", online_url or "online"
    else:
        place = venue_line + (" (and online)" if online else "")
        place_short = ", ".join(v for v in (venue.get("name"), venue.get("city")) if v) or "see details"
    return {
        "kind": notification.kind,
        "name": recipient.display_name,
        "title": snap["title"],
        "when": f"{starts:%A} {starts.day} {starts:%B %Y at %H:%M} {starts.tzname()} ({starts.tzinfo})",
        "when_short": f"{starts:%a} {starts.day} {starts:%b %H:%M} {starts.tzname()}",
        "place": place,
        "place_short": place_short,
        "online_url": online_url,
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
    template = templates.get_template(template_name)
    return "".join(template.blocks[block](template.new_context(ctx))).strip()


def email(
    settings: Settings, notification: Notification, recipient: Recipient, to: str, event: Event, now: datetime
) -> Message:
    """The email of `notification` to `recipient` at address `to` (sender.contact)."""
    ctx = context(settings, notification, recipient, event)
    kind_template = f"email/{notification.kind}.txt"
    ctx["subject"] = _block(kind_template, "subject", ctx)
    ctx["intro"] = _block(kind_template, "intro", ctx)
    message = MIMEMultipart("alternative", policy=EMAIL_POLICY)
    # RFC 2047 words of at most 75 characters for a non-ASCII title, folded; an ASCII one stays as it is.
    message["Subject"] = Header(ctx["subject"], header_name="Subject").encode()
    message["From"] = settings.email_from
    message["To"] = to  # the bare address: a display name may be a pseudonym they share with no one
    message["Date"] = format_datetime(now)
    # The same notification always has the same Message-ID, so a resend can be recognised as one.
    message["Message-ID"] = f"<{notification.id}@{urlparse(settings.notifications_url).hostname or 'gather'}>"
    if ctx["unsubscribe_url"]:
        message["List-Unsubscribe"] = f"<{one_click_unsubscribe_url(settings, recipient)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    for layout, subtype in (("email/layout.txt", "plain"), ("email/layout.html", "html")):
        message.attach(_text_part(templates.get_template(layout).render(ctx), subtype))
    return message


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    # What MIMEText(text, subtype, UTF8_QP) builds; MIMEText is declared to take a charset's name only, and
    # by name UTF-8 would be base64, not the quoted-printable that keeps a text part readable.
    part = MIMENonMultipart("text", subtype, policy=EMAIL_POLICY, charset="utf-8")
    part.set_payload(text, UTF8_QP)
    return part


def sms(settings: Settings, notification: Notification, recipient: Recipient, event: Event) -> str:
    ctx = context(settings, notification, recipient, event)
    template = templates.get_template(f"sms/{notification.kind}.txt")
    return rules.fit_sms(lambda title: template.render(ctx | {"title": title}).strip(), ctx["title"])
