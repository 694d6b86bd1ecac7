"""Languages: a message speaks its event's `language` where Gather has a translation (English, Spanish,
Welsh; gettext catalogs under translations/, compiled .mo files committed), else English; its dates and
times are written that language's way (Babel). The sender has no request to hang a language on, so
each language gets its own Jinja environment, made once and shared by the sending threads."""

from __future__ import annotations

import functools
import gettext
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.support import Translations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gather_notifications import rules

#: The languages with a translation of every message (translations/<language>/LC_MESSAGES/messages.po).
LANGUAGES = ("en", "es", "cy")
DEFAULT = "en"
TRANSLATIONS = Path(__file__).parent / "translations"
#: Babel's locale for each language: dates in English are written the British way.
LOCALES = {"en": "en_GB", "es": "es", "cy": "cy"}
#: The date patterns (long, short) of each language, as Babel reads them (CLDR): "Wednesday 17 June 2026",
#: "Wed 17 Jun"; in Spanish "miércoles 17 de junio de 2026", "mié 17 jun".
DATE_PATTERNS = {
    "en": ("EEEE d MMMM y", "EEE d MMM"),
    "es": ("EEEE d 'de' MMMM 'de' y", "EEE d MMM"),
    "cy": ("EEEE d MMMM y", "EEE d MMM"),
}


def language(tag: str | None) -> str:
    """The translation a message about an event in language `tag` (a BCP 47 tag, e.g. "es-MX") uses."""
    primary = (tag or "").replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else DEFAULT


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of `lang`; English is the source language (its catalog is the messages themselves)."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    return Translations.load(str(TRANSLATIONS), [lang])


def gsm7_gettext(lang: str) -> functools.partial[str]:
    return functools.partial(_gsm7_gettext, lang)


def _gsm7_gettext(lang: str, message: str) -> str:
    # The words of an SMS in the GSM-7 alphabet (á → a, ŵ → w): one character outside it makes the whole
    # SMS UCS-2, less than half as long per segment, and the link at its end would not fit.
    return rules.gsm7_letters(translations(lang).gettext(message))


@functools.cache
def environment(lang: str, sms: bool = False) -> Environment:
    """The templates speaking `lang`; for an SMS (`sms`), its words in GSM-7 letters."""
    env = Environment(
        loader=PackageLoader("gather_notifications"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    catalog = translations(lang)
    if sms:
        env.install_gettext_callables(gsm7_gettext(lang), catalog.ngettext, newstyle=True)  # type: ignore[attr-defined]
    else:
        env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    return env


def when(moment: datetime, zone: ZoneInfo, lang: str) -> str:
    """ "Wednesday 17 June 2026 at 08:00 EDT (America/New_York)", in `lang`."""
    local = moment.astimezone(zone)
    locale = LOCALES[lang]
    words = {
        "date": format_date(local, DATE_PATTERNS[lang][0], locale=locale),
        "time": format_time(local, "HH:mm", locale=locale),
        "zone": local.tzname(),
        "zone_id": str(zone),
    }
    return translations(lang).gettext("%(date)s at %(time)s %(zone)s (%(zone_id)s)") % words


def when_short(moment: datetime, zone: ZoneInfo, lang: str) -> str:
    """ "Wed 17 Jun 08:00 EDT", in `lang`: for an SMS."""
    local = moment.astimezone(zone)
    locale = LOCALES[lang]
    date = format_date(local, DATE_PATTERNS[lang][1], locale=locale)
    return f"{date} {format_time(local, 'HH:mm', locale=locale)} {local.tzname()}"
