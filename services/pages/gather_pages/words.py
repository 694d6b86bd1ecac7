"""The words the pages use for the shared vocabulary (kinds, formats, channels, accessibility features):
translated, and defined once here so that every template says the same thing."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

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

#: Keyed by the accessibility features of the event message (store.ACCESS_FEATURES).
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
