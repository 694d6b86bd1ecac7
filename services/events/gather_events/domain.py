"""The rules of events, without Flask or a database: transitions between statuses, what a consistent event
is, what changed between two versions, and recurrence. The statuses, kinds and formats themselves are
words every service shares (gather_shared.vocabulary)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr

from gather_shared.errors import Refusal
from gather_shared.vocabulary import ALWAYS_VERIFIED_KINDS, ONLINE_FORMATS, VENUE_FORMATS, EventStatus, Verification

# --- transitions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    action: str
    allowed_from: tuple[str, ...]
    to: str
    message: str  # the message type that announces it


PUBLISH = Transition("publish", (EventStatus.DRAFT,), EventStatus.PUBLISHED, "event.published.v1")
POSTPONE = Transition("postpone", (EventStatus.PUBLISHED,), EventStatus.POSTPONED, "event.postponed.v1")
CANCEL = Transition(
    "cancel", (EventStatus.PUBLISHED, EventStatus.POSTPONED), EventStatus.CANCELLED, "event.cancelled.v1"
)
#: A postponed event gets a new time: it is back on, announced as an update (status among the changes).
REPUBLISH = Transition("republish", (EventStatus.POSTPONED,), EventStatus.PUBLISHED, "event.updated.v1")


class TransitionNotAllowed(Refusal):
    """The event's status does not allow the change; `current` names that status."""

    def __init__(self, current: str, detail: str) -> None:
        super().__init__(detail)
        self.current = current


def next_status(transition: Transition, current: str) -> str:
    """The status after `transition`, or TransitionNotAllowed naming the current status."""
    if current not in transition.allowed_from:
        allowed = " or ".join(transition.allowed_from)
        raise TransitionNotAllowed(current, f"The event is {current}; {transition.action} needs it to be {allowed}.")
    return transition.to


def check_editable(status: str) -> None:
    """A cancelled event is final: nothing about it changes any more (TransitionNotAllowed)."""
    if status == EventStatus.CANCELLED:
        raise TransitionNotAllowed(status, f"The event is {status}; it can no longer change.")


def republishes(status: str, patched: Iterable[str]) -> bool:
    """Setting the time of a postponed event brings it back on, even at the time it already had (that is
    how an organizer says "it goes ahead after all")."""
    return status == EventStatus.POSTPONED and not {"starts_at", "ends_at"}.isdisjoint(patched)


# --- validation -------------------------------------------------------------------------------------


def consistency_errors(event: Mapping[str, Any]) -> dict[str, list[str]]:
    """The rules between fields, for a whole event (new, or old merged with a PATCH): {field: [why]}."""
    errors: dict[str, list[str]] = {}
    if event["ends_at"] <= event["starts_at"]:
        errors["ends_at"] = ["Must be after starts_at."]
    if event["format"] in ONLINE_FORMATS and not event.get("online_url"):
        errors["online_url"] = ["Required for online and hybrid events (an https link)."]
    if event["format"] in VENUE_FORMATS and not event.get("venue"):
        errors["venue"] = ["Required for in-person and hybrid events."]
    if event.get("verification") == Verification.NONE and event["kind"] in ALWAYS_VERIFIED_KINDS:
        # Who attends a support group is health information: nobody may be put on its list unproven.
        errors["verification"] = [f"A {event['kind']} always verifies its attendees' contact."]
    opens = event.get("registration_opens_at")
    if opens is not None and opens >= event["starts_at"]:
        errors["registration_opens_at"] = ["Must be before starts_at."]
    return errors


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags trimmed, lower-cased, without duplicates, in the organizer's order."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.strip().lower(), None)
    return [tag for tag in seen if tag]


def search_text(title: str, summary: str | None, tags: Iterable[str]) -> str:
    """What the listing's `q` searches: title, summary and tags, lower-cased once on write."""
    return "\n".join([title, summary or "", *tags]).lower()


def tag_keys(tags: Iterable[str]) -> str:
    """Tags as `|a|b|`, so that one tag matches exactly with LIKE '%|tag|%' on every database
    (tags cannot contain `|`: see the HTTP schema)."""
    return "|" + "".join(f"{tag}|" for tag in tags)


# --- what changed -----------------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {old, new}} for each field of `new` whose value differs from `old`, JSON-ready, so that
    attendees can be told exactly what changed."""
    return {
        name: {"old": json_ready(old.get(name)), "new": json_ready(value)}
        for name, value in new.items()
        if old.get(name) != value
    }


# --- recurrence -------------------------------------------------------------------------------------


MAX_OCCURRENCES = 52
#: Every date of a series is before this year (the first date's own limit: schemas.SUPPORTED_TIMES).
LAST_YEAR = 2099
#: The Gregorian calendar repeats exactly every 400 years (146,097 days: whole weeks, the same leap years),
#: so the dates a rule gives from a first date in year Y are the dates it gives from year Y + SHIFT_YEARS,
#: moved back. dateutil searches for the next matching date until one matches or the year 9999 ends; from
#: there, that is at most 400 years of periods, whatever the rule, where from today it would be 8,000: a
#: rule no date matches (30 February) is refused in a fraction of a second, not after minutes.
SHIFT_YEARS = 19 * 400
#: And each period's work is bounded too: at most this many BYSETPOS positions (1 = first, -1 = last…).
MAX_SET_POSITIONS = 7


class RecurrenceError(Refusal):
    pass


@dataclass(frozen=True)
class Occurrence:
    starts_at: datetime
    ends_at: datetime


def occurrences(rule: str, starts_at: datetime, ends_at: datetime, timezone: str) -> list[Occurrence]:
    """Expand an RFC 5545 RRULE from the first occurrence, in local wall-clock time of `timezone`: a weekly
    group at 18:00 stays at 18:00 across daylight-saving changes, and keeps its local duration."""
    zone = ZoneInfo(timezone)
    local_start = starts_at.astimezone(zone).replace(tzinfo=None)
    local_end = ends_at.astimezone(zone).replace(tzinfo=None)
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if not text or "\n" in text or "DTSTART" in text.upper():
        raise RecurrenceError("Give one RRULE, e.g. FREQ=WEEKLY;COUNT=10; the first date is starts_at.")
    parts = _check_parts(text)
    until = _until(parts.pop("UNTIL", None), zone)
    try:
        # Naive local times throughout (a UTC UNTIL is made local by _until): dateutil keeps the wall-clock
        # time, so 18:00 stays 18:00.
        parsed = rrulestr(";".join(f"{name}={value}" for name, value in parts.items()), dtstart=_later(local_start))
        if isinstance(parsed, rrule) and until is not None:
            parsed = parsed.replace(until=_later(until) if until.year <= LAST_YEAR else None)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"Not a valid RFC 5545 RRULE: {exc}") from exc
    if isinstance(parsed, rruleset) or not isinstance(parsed, rrule):
        raise RecurrenceError("Give one RRULE, e.g. FREQ=WEEKLY;COUNT=10.")
    # Take one more than allowed: enough to tell an overlong (or endless) rule from an allowed one.
    starts: list[datetime] = []
    try:
        for later in parsed:
            start = later.replace(year=later.year - SHIFT_YEARS)
            if start.year > LAST_YEAR:
                raise RecurrenceError(f"Every date must be before {LAST_YEAR + 1}; add COUNT or an UNTIL.")
            starts.append(start)
            if len(starts) > MAX_OCCURRENCES:
                raise RecurrenceError(f"At most {MAX_OCCURRENCES} occurrences; add COUNT or an earlier UNTIL.")
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError(f"Not a usable RFC 5545 RRULE: {exc}") from exc
    if not starts:
        raise RecurrenceError(f"The rule gives no date before {LAST_YEAR + 1}.")
    duration = local_end - local_start
    return [Occurrence(start.replace(tzinfo=zone), (start + duration).replace(tzinfo=zone)) for start in starts]


#: What a rule may say. dateutil searches period after period for a date that matches every filter (see
#: SHIFT_YEARS for how far): hence no sub-daily frequencies, whose periods are many, and filters only where
#: each period's work stays small (a daily rule may pick weekdays only).
RULE_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS"}
FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
DAILY_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY"}


def _later(local: datetime) -> datetime:
    """`local` SHIFT_YEARS later: the same day of the week, the same date (29 February included)."""
    return local.replace(year=local.year + SHIFT_YEARS)


def _until(value: str | None, zone: ZoneInfo) -> datetime | None:
    """An UNTIL as naive local time: a date (the whole day), a floating local time, or UTC (…Z)."""
    if value is None:
        return None
    for form in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            until = datetime.strptime(value, form)
        except ValueError:
            continue
        if form.endswith("Z"):
            return until.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        return until.replace(hour=23, minute=59, second=59) if form == "%Y%m%d" else until
    raise RecurrenceError(f"UNTIL={value} is not a date (20301231) or a time (20301231T180000Z).")


def _check_parts(rule: str) -> dict[str, str]:
    parts = dict(part.partition("=")[::2] for part in rule.upper().split(";") if part)
    unknown = set(parts) - RULE_PARTS
    if unknown:
        raise RecurrenceError(f"Not supported here: {', '.join(sorted(unknown))}.")
    if parts.get("FREQ") not in FREQUENCIES:
        raise RecurrenceError("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY.")
    if parts["FREQ"] == "DAILY" and set(parts) - DAILY_PARTS:
        raise RecurrenceError("A daily rule may only choose weekdays (BYDAY).")
    if not parts.get("INTERVAL", "1").isdigit() or not 1 <= int(parts.get("INTERVAL", "1")) <= 52:
        raise RecurrenceError("INTERVAL must be between 1 and 52.")
    if len(parts.get("BYSETPOS", "").split(",")) > MAX_SET_POSITIONS:
        raise RecurrenceError(f"BYSETPOS may choose at most {MAX_SET_POSITIONS} positions.")
    return parts
