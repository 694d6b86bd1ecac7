"""The rules of events, without Flask or a database: transitions between statuses, what a consistent event
is, what changed between two versions, and recurrence. The statuses, kinds and formats themselves are
words every service shares (gather_shared.vocabulary)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
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
    _check_parts(text)
    # An UNTIL in UTC (…Z) needs an aware start; a floating UNTIL is local time, like the naive start.
    utc_until = re.search(r"UNTIL=\d{8}T\d{6}Z", text.upper()) is not None
    try:
        parsed = rrulestr(text, dtstart=local_start.replace(tzinfo=zone) if utc_until else local_start)
    except (ValueError, TypeError) as exc:
        raise RecurrenceError(f"Not a valid RFC 5545 RRULE: {exc}") from exc
    if isinstance(parsed, rruleset) or not isinstance(parsed, rrule):
        raise RecurrenceError("Give one RRULE, e.g. FREQ=WEEKLY;COUNT=10.")
    # Take one more than allowed: enough to tell an overlong (or endless) rule from an allowed one.
    starts: list[datetime] = []
    try:
        for start in parsed:
            starts.append(start.replace(tzinfo=None))  # dateutil keeps the wall-clock time: 18:00 stays 18:00
            if len(starts) > MAX_OCCURRENCES:
                raise RecurrenceError(f"At most {MAX_OCCURRENCES} occurrences; add COUNT or an earlier UNTIL.")
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError(f"Not a usable RFC 5545 RRULE: {exc}") from exc
    if not starts:
        raise RecurrenceError("The rule gives no date at all.")
    duration = local_end - local_start
    return [Occurrence(start.replace(tzinfo=zone), (start + duration).replace(tzinfo=zone)) for start in starts]


#: What a rule may say. dateutil searches until year 9999 for a date that matches every filter, so a
#: rule no date can match (say, 30 February) would hold a worker for seconds or hours: hence no sub-daily
#: frequencies, and filters only where the search stays short (a daily rule may pick weekdays only).
RULE_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS"}
FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
DAILY_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY"}


def _check_parts(rule: str) -> None:
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
