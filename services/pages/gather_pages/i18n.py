"""Languages and dates. A page speaks the event's `language` where Gather has a translation (English,
Spanish, Welsh), else English; a page about no event (the listing, unsubscribing) speaks the browser's
preferred one of those. Dates and times are the event's own, in its time zone, which is always named."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flask_babel
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_timezone_name
from flask import g, request
from flask_babel.speaklater import LazyString

#: The languages with a translation of every page (translations/<language>/LC_MESSAGES/messages.po).
LANGUAGES = ("en", "es", "cy")
DEFAULT = "en"
#: Dates in English are written the British way (12 December 2026, 18:00) unless the event's language
#: names another region (en-US).
FORMAT_DEFAULTS = {"en": "en_GB"}


def _primary(tag: str | None) -> str:
    return (tag or "").replace("_", "-").split("-")[0].lower()


def page_language(tag: str | None) -> str:
    """The translation a page about an event in language `tag` (a BCP 47 tag, e.g. "es-MX") uses."""
    primary = _primary(tag)
    return primary if primary in LANGUAGES else DEFAULT


def select_locale() -> str:
    """Flask-Babel's locale selector: the language a view chose (`speak`), else the browser's."""
    chosen = g.get("page_locale")
    if chosen:
        return chosen
    language = request.accept_languages.best_match(LANGUAGES, DEFAULT)
    return _format_locale(None, language)


def speak(tag: str | None) -> None:
    """Make the rest of this request speak the language of an event in language `tag`: the translation,
    and the region's way of writing dates where the tag names one."""
    language = page_language(tag)
    g.page_locale = _format_locale(tag, language)
    flask_babel.refresh()  # drop a locale already looked up in this request
    g.pop("translations", None)


def translations() -> Any:
    """This request's catalog, looked up once: a page asks for some hundred strings, and Flask-Babel
    looks its context up again for each (docs/benchmarks.md, "Measurements behind the code")."""
    found = g.get("translations")
    if found is None:
        found = g.translations = flask_babel.get_translations()
    return found


def gettext(message: str) -> str:
    """Templates' `_()`: Jinja's i18n extension (newstyle) escapes the result and fills its %(name)s."""
    return translations().ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations().ungettext(singular, plural, n)


def lazy(message: str) -> LazyString:
    """`_l()`: a message translated when it is shown (labels and choices, defined once at import)."""
    return LazyString(gettext, message)


@functools.cache
def _format_locale(tag: str | None, language: str) -> str:
    """The locale dates are written in: the event's tag where it names a region of the page's language
    ("en-US", "es-MX"), else the language's default ("en" is British, not Babel's American default)."""
    if tag and _primary(tag) == language:
        try:
            parsed = Locale.parse(tag.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            parsed = None
        if parsed is not None and parsed.territory:
            return str(parsed)
    return FORMAT_DEFAULTS.get(language, language)


def current_locale() -> str:
    """The locale of this page, e.g. "cy" or "en_GB" (for dates), and its language (for `lang`)."""
    return str(flask_babel.get_locale() or DEFAULT)


def html_lang() -> str:
    """The page's `lang` attribute: the BCP 47 form of its locale (en-GB, cy)."""
    return current_locale().replace("_", "-")


def when(starts_at: datetime, ends_at: datetime, timezone: str) -> str:
    """ "Saturday, 12 December 2026, 18:00 to 19:30 (Greenwich Mean Time)", in the page's language: how
    every page (listing, event, manage and the steps between) says when an event is."""
    return _when(starts_at, ends_at, timezone, current_locale())


def moment(at: datetime, timezone: str) -> str:
    """ "Saturday, 12 December 2026, 18:00 (Greenwich Mean Time)": one moment, such as when registration
    opens, written as `when` writes the start."""
    words = _local_words(at, timezone, current_locale())
    return flask_babel.gettext("%(date)s, %(time)s (%(zone)s)", date=words.date, time=words.time, zone=words.zone)


@dataclass(frozen=True)
class _LocalWords:
    date: str
    time: str
    zone: str


def _local_words(at: datetime, timezone: str, locale: str) -> _LocalWords:
    """The one way a moment is written: in the event's time zone, the date in full, the time short, and the
    zone's long name as it was at that moment (British Summer Time in June), in `locale`."""
    local = at.astimezone(ZoneInfo(timezone))
    return _LocalWords(
        date=format_date(local, "full", locale=locale),
        time=format_time(local, "short", locale=locale),
        zone=get_timezone_name(local, "long", locale=locale),
    )


@functools.lru_cache(maxsize=4096)
def _when(starts_at: datetime, ends_at: datetime, timezone: str, locale: str) -> str:
    # Cached: formatting with Babel costs more than the rest of a listing row; the same few hundred
    # events are shown again and again. (`locale` in the key: the gettext below uses the page's.)
    start, end = _local_words(starts_at, timezone, locale), _local_words(ends_at, timezone, locale)
    # One set of words for both sentences: the one-day sentence leaves `end_date` out.
    words = {"date": start.date, "start": start.time, "end_date": end.date, "end": end.time, "zone": start.zone}
    if start.date == end.date:
        return flask_babel.gettext("%(date)s, %(start)s to %(end)s (%(zone)s)", **words)
    return flask_babel.gettext("%(date)s, %(start)s to %(end_date)s, %(end)s (%(zone)s)", **words)
