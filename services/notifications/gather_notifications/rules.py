"""The service's rules about time and text, pure (no database, no clock: `now` is always a parameter)."""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from gather_shared.vocabulary import NotificationKind

# --- kinds ------------------------------------------------------------------------------------------

#: Kinds an attendee may unsubscribe from; all others concern their registration and always go out by
#: email (they carry no List-Unsubscribe header).
NON_TRANSACTIONAL = frozenset({NotificationKind.REMINDER})

#: The links a person asked for a moment ago (to verify their contact, to manage their registration):
#: transactional and awaited, so never kept back by an opt-out nor held until quiet hours end.
LINK_KINDS = frozenset({NotificationKind.VERIFY_CONTACT, NotificationKind.MANAGE_LINK})

#: News about the event itself: urgent in SMS quiet hours when the event starts before they end.
EVENT_NEWS = frozenset(
    {NotificationKind.EVENT_CHANGED, NotificationKind.EVENT_POSTPONED, NotificationKind.EVENT_CANCELLED}
)

#: The SMS that go even in quiet hours when the event starts before they end: news about the event, and
#: what its organizer has to say (held until the morning, either would arrive after the event). Any other
#: SMS waits for the end of quiet hours, or is not sent when that is too late.
URGENT_BEFORE_START = EVENT_NEWS | {NotificationKind.ANNOUNCEMENT}

# --- reminder offsets -------------------------------------------------------------------------------

_OFFSET = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_offsets(setting: str) -> tuple[timedelta, ...]:
    """`GATHER_REMINDER_OFFSETS` ("24h,1h", "90s", "15m", "1d") → offsets, largest first."""
    offsets = []
    for part in setting.split(","):
        match = _OFFSET.match(part)
        if match is None:
            raise ValueError(f"GATHER_REMINDER_OFFSETS: {part!r} is not like 90s, 15m, 2h or 1d")
        offsets.append(timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]]))
    return tuple(sorted(set(offsets), reverse=True))


def reminder_times(starts_at: datetime, offsets: tuple[timedelta, ...], after: datetime) -> dict[int, datetime]:
    """{offset in seconds: when it is due} for the offsets still ahead of `after`: a reminder whose
    time had already passed (at registration, or when the event moved) is never planned."""
    return {int(o.total_seconds()): starts_at - o for o in offsets if starts_at - o > after}


# --- SMS quiet hours --------------------------------------------------------------------------------


@functools.cache  # the sender asks for every SMS; the setting does not change
def parse_quiet_hours(setting: str) -> tuple[time, time]:
    """ "21:00-08:00" → (21:00, 08:00). The window may wrap around midnight."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in setting.split("-"))
    except ValueError as exc:
        raise ValueError(f"GATHER_SMS_QUIET_HOURS: {setting!r} is not like 21:00-08:00") from exc
    return start, end


def quiet_hours_end(now: datetime, zone: ZoneInfo, window: tuple[time, time]) -> datetime | None:
    """When the quiet hours around `now` end, in UTC-aware time; None when `now` is not in them.

    Computed on the recipient's wall clock, then converted: on the nights clocks change the window is
    one hour shorter or longer in real time, but still ends at 08:00 on their clock."""
    start, end = window
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    wraps = start > end
    inside = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if wraps and clock >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(now.tzinfo)


# --- SMS length -------------------------------------------------------------------------------------

# The GSM 03.38 default alphabet; the extension characters cost two septets (an escape first).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
MAX_SEGMENTS = 2


def sms_segments(text: str) -> int:
    """How many segments `text` costs: GSM-7 when every character is in its alphabet (160 septets in
    one, 153 per part when split), else UCS-2 (70 UTF-16 units in one, 67 per part)."""
    if is_gsm7(text):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2  # characters beyond the BMP take two units
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


#: Letters and marks outside GSM-7 that Unicode does not decompose into one inside it.
_GSM7_LOOKALIKES = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th"}
    # Typographic punctuation (Welsh writes Mae’n): as the plain marks a phone keyboard types.
    | {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."}
)


def is_gsm7(text: str) -> bool:
    return all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text)


def gsm7_letters(text: str) -> str:
    """`text` in the GSM-7 alphabet as far as it goes: each other letter as its base letter (ŵ → w, Ł → L),
    anything else (an emoji) left out; the spacing as it was."""
    kept = []
    for char in text.translate(_GSM7_LOOKALIKES):
        if is_gsm7(char):
            kept.append(char)
        else:
            kept.extend(part for part in unicodedata.normalize("NFKD", char) if is_gsm7(part))
    return "".join(kept)


def gsm7_lookalike(text: str) -> str:
    """`gsm7_letters`, on one line with single spaces (what is left out leaves no gap)."""
    return " ".join(gsm7_letters(text).split())


def fit_sms(render: Callable[[str], str], title: str) -> str:
    """Render an SMS so that it fits in MAX_SEGMENTS: the title is the only free-length part; the link at
    the end must stay whole. A signed link is long (docs/notifications.md: a manage link is some 160
    characters), too long for two segments of UCS-2 (134 characters), so a title that is all that keeps a
    text out of GSM-7 is written in GSM-7 letters first; then the title is shortened until the text fits.
    If the text still does not fit (a venue name outside GSM-7), it takes more segments: the link stays."""
    text = render(title)
    if sms_segments(text) > MAX_SEGMENTS and not is_gsm7(text):
        plain = render(gsm7_lookalike(title))
        if is_gsm7(plain):
            title, text = gsm7_lookalike(title), plain
    cut = len(title)
    while sms_segments(text) > MAX_SEGMENTS and cut > 0:
        cut -= 1
        text = render(title[:cut].rstrip() + "...")
    return text


# --- retries ----------------------------------------------------------------------------------------

MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600


def retry_delay(attempt: int, rand: Callable[[], float] = random.random) -> timedelta:
    """Exponential backoff with jitter after failed attempt number `attempt` (1-based): 30s, 1m, 2m…
    capped at an hour, each drawn between half and all of it so that many failures retry spread out."""
    ceiling = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)
    return timedelta(seconds=ceiling * (0.5 + rand() / 2))
