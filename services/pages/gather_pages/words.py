"""The words the pages use for the shared vocabulary (kinds, formats, channels, accessibility features):
translated, and defined once here so that every template says the same thing."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from gather_pages.availability import Closed, Places
from gather_pages.i18n import gettext as _
from gather_pages.i18n import lazy as _l
from gather_pages.i18n import ngettext
from gather_shared.vocabulary import Channel, EventFormat, EventKind

KINDS = {
    EventKind.WORKSHOP: _l("Workshop"),
    EventKind.SUPPORT_GROUP: _l("Support group"),
    EventKind.TALK: _l("Talk"),
    EventKind.AWARENESS_CAMPAIGN: _l("Awareness campaign"),
    EventKind.RECREATIONAL: _l("Recreation"),
    EventKind.SOCIAL: _l("Social"),
    EventKind.OTHER: _l("Other"),
}

FORMATS = {
    EventFormat.IN_PERSON: _l("In person"),
    EventFormat.ONLINE: _l("Online"),
    EventFormat.HYBRID: _l("In person and online"),
}

CHANNELS = {
    Channel.EMAIL: _l("Email"),
    Channel.SMS: _l("Text message"),
}

#: Keyed by the accessibility features of the vocabulary (ACCESSIBILITY_FEATURES).
FEATURES = {
    "wheelchair": _l("Wheelchair accessible"),
    "step_free": _l("Step-free access"),
    "hearing_loop": _l("Hearing loop"),
    "sign_language": _l("Sign language interpretation"),
    "captions": _l("Live captions"),
    "quiet_space": _l("Quiet space"),
}


def features_of(accessibility: dict[str, Any] | None) -> list[Any]:
    """The words for the accessibility features an event has, in the order of FEATURES."""
    access = accessibility or {}
    return [words for feature, words in FEATURES.items() if access.get(feature)]


# Functions rather than template macros: a listing shows these twenty times, and a Python call costs a
# fraction of a macro's.


def places(seats: Places) -> str:
    """ "3 places left", "Full – waiting list open"…: what the listing and the event page say."""
    closed = {
        Closed.CANCELLED: _("Cancelled"),
        Closed.POSTPONED: _("Postponed"),
        Closed.STARTED: _("Started"),
        Closed.NOT_YET_OPEN: _("Registration not open yet"),  # the event's page says when it opens
    }
    if seats.closed in closed:
        return closed[seats.closed]
    if seats.remaining is None:
        return _("Places available")
    if seats.remaining > 0:
        return ngettext("%(num)d place left", "%(num)d places left", seats.remaining) % {"num": seats.remaining}
    return _("Full – waiting list open") if seats.waitlist_open else _("Full")


def place(event: Any) -> str:
    """Where, in a line: "Community Hall, Leeds", "Online", "Community Hall, Leeds and online"."""
    if event.format == EventFormat.ONLINE:
        return _("Online")
    venue = event.venue or {}
    where = ", ".join(part for part in (venue.get("name"), venue.get("city")) if part)
    if event.format == EventFormat.HYBRID:
        return where + " " + _("and online")
    return where


def described_by(field: Any, hint: bool) -> Markup:
    """A field's `aria-describedby` attribute: its hint and its error, when it has them."""
    ids = [f"{field.id}-hint"] * bool(hint) + [f"{field.id}-error"] * bool(field.errors)
    return Markup(' aria-describedby="{}"').format(" ".join(ids)) if ids else Markup("")
