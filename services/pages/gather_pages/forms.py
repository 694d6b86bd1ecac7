"""The pages' forms (Flask-WTF: every POST form carries its CSRF token), what the pages check before
asking a service, and how a service's refusal becomes a message next to the field it concerns.

The pages check what a person can put right at once (a missing name, a channel without its contact); the
signup service checks the rest (an address's syntax, a phone number's validity) and its `errors` are put
next to the same fields, in the page's words, never in the API's."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date
from importlib import resources
from typing import Any, TypeVar

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, DateField, Field, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3's; not in its stubs yet
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from gather_pages import i18n, words
from gather_pages.apis import Answer
from gather_pages.availability import Closed, Places
from gather_pages.i18n import lazy as _l
from gather_pages.store import Search
from gather_shared.vocabulary import ACCESSIBILITY_FEATURES, Channel

NAME_MAX = 60
#: A choice's value: a word of the vocabulary, or "" for any.
_Value = TypeVar("_Value", bound=str)

#: What to say next to a field the signup service refused (its `errors` keys → the form's fields).
API_FIELDS = {"display_name": "display_name", "email": "email", "phone": "phone", "channels": "channels"}
API_FIELDS |= {"timezone": "timezone", "consent.reminders": "reminders", "consent": "reminders"}
REFUSED = {
    "display_name": _l("Enter your first name or a nickname, on one line and up to 60 characters"),
    "email": _l("Enter an email address in the correct format, like name@example.com"),
    "phone": _l("Enter a mobile number in international format, like +44 7700 900982"),
    "channels": _l("Choose how we should send you messages, and give the email address or mobile number it needs"),
    "timezone": _l("Choose a time zone from the list"),
    "reminders": _l("Choose whether you want reminders"),
}


def choices(labels: Mapping[_Value, Any]) -> list[SelectChoice]:
    """A choice field's options: value → words (the templates read each one's `value` and `label`)."""
    return [SelectChoice(value, label) for value, label in labels.items()]


def one_line(_form: Any, field: Field) -> None:
    if field.data and any(char in field.data for char in "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"):
        raise ValidationError(_l("Enter your first name or a nickname on one line"))


class SearchForm(FlaskForm):
    """The listing's filters: a GET form, nothing to protect (no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("Kind of event"), choices=choices({"": _l("Any kind")} | words.KINDS), default="")
    format = SelectField(
        _l("In person or online"), choices=choices({"": _l("In person or online")} | words.FORMATS), default=""
    )
    city = StringField(_l("Town or city"), validators=[Optional(), Length(max=100)])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    access = SelectMultipleField(
        _l("Accessibility"), choices=choices({f: words.FEATURES[f] for f in ACCESSIBILITY_FEATURES})
    )

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date must be the same as or after the start date"))

    def plain_errors(self) -> None:
        """WTForms' own words for a date it could not read (typed by hand, without a date picker) or a
        choice that is not in the list (an edited link), replaced by ours."""
        for date_field in (self.date_from, self.date_to):
            if date_field.raw_data and date_field.raw_data[0] and date_field.data is None:
                date_field.errors = [_("Enter a real date, like 2026-12-31")]
        for choice_field in (self.kind, self.format, self.access):
            if choice_field.errors:
                choice_field.errors = [_("Choose from the list")]

    def search(self) -> Search:
        """The valid filters (a filter with an error is left out, and said so next to it)."""

        def valid(field: Field) -> Any:
            return None if field.errors else field.data

        def day(field: Field) -> date | None:
            return valid(field) if isinstance(field.data, date) else None

        return Search(
            q=valid(self.q) or "",
            kind=valid(self.kind) or None,
            format=valid(self.format) or None,
            city=valid(self.city) or "",
            date_from=day(self.date_from),
            date_to=day(self.date_to),
            access=tuple(valid(self.access) or ()),
        )


class DetailsForm(FlaskForm):
    """What an attendee tells us about themselves: on registering, and on the manage page."""

    display_name = StringField(
        _l("First name or nickname"),
        validators=[
            DataRequired(message=_l("Enter your first name or a nickname")),
            Length(max=NAME_MAX, message=_l("Your first name or nickname must be 60 characters or fewer")),
            one_line,
        ],
        filters=[lambda text: text.strip() if isinstance(text, str) else text],
    )
    channels = SelectMultipleField(_l("How should we send you messages?"), choices=choices(words.CHANNELS))
    reminders = BooleanField(_l("Yes, send me reminders before the event"))
    timezone = StringField(_l("Your time zone"), validators=[Optional(), Length(max=64)])

    def validate_channels(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError(_l("Choose how we should send you messages"))

    def api_body(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name.data,
            "channels": sorted(set(self.channels.data or ())),
            "timezone": self.timezone.data or None,
            "consent": {"reminders": bool(self.reminders.data)},
        }

    def refused(self, answer: Answer) -> None:
        """Say why a service refused: next to the fields its validation errors name, else above the form."""
        placed = False
        for name in answer.errors:
            field_name = API_FIELDS.get(name)
            if field_name is not None and field_name in self:
                self[field_name].errors = [*self[field_name].errors, REFUSED[field_name]]
                placed = True
        if not placed:
            self.form_errors.append(problem(answer))


class RegistrationForm(DetailsForm):
    #: The fields in the order the page shows them (the error summary follows it).
    ORDER = ("display_name", "email", "phone", "channels", "reminders", "timezone")

    email = StringField(
        _l("Email address"),
        validators=[Length(max=320, message=REFUSED["email"])],
        filters=[lambda text: text.strip() if isinstance(text, str) else text],
    )
    phone = StringField(
        _l("Mobile number"),
        validators=[Length(max=30, message=REFUSED["phone"])],
        filters=[lambda text: text.strip() if isinstance(text, str) else text],
    )

    def validate_email(self, field: StringField) -> None:
        if not field.data and not self.phone.data:
            raise ValidationError(_l("Enter an email address or a mobile number"))
        if not field.data and Channel.EMAIL in (self.channels.data or []):
            raise ValidationError(_l("Enter an email address to get messages by email, or untick email"))

    def validate_phone(self, field: StringField) -> None:
        if not field.data and Channel.SMS in (self.channels.data or []):
            raise ValidationError(_l("Enter a mobile number to get text messages, or untick text message"))

    def api_body(self) -> dict[str, Any]:
        return super().api_body() | {"email": self.email.data or None, "phone": self.phone.data or None}


class ManageForm(DetailsForm):
    """The manage page's changes. `reachable`: the channels the registration has a contact for."""

    def __init__(self, *args: Any, reachable: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reachable = reachable
        self.channels.choices = choices({channel: words.CHANNELS[Channel(channel)] for channel in reachable})


class ConfirmForm(FlaskForm):
    """A button that does one thing (confirm my place, cancel, delete, unsubscribe): only its CSRF token."""


class EraseForm(FlaskForm):
    """Cancel and delete my details: the person ticks that they understand it cannot be undone."""

    understood = BooleanField(
        _l("I understand that my place will be cancelled and my details deleted, and that this cannot be undone"),
        validators=[InputRequired(message=_l("Tick the box to confirm you want your details deleted"))],
    )


def in_page_order(form: FlaskForm) -> list[Field]:
    """The form's fields in the order its page shows them (`ORDER`, where the class order differs)."""
    order = getattr(form, "ORDER", None)
    return [form[name] for name in order] if order else list(form)


# --- what the pages say ------------------------------------------------------------------------------


def problem(answer: Answer) -> str:
    """A service's refusal in the page's words (its `code`: contract.md)."""
    match answer.code, answer.status:
        case "event_full", _status:
            return _("Sorry, this event is now full and has no waiting list.")
        case "registration_closed", _status:
            return _("Sorry, registration for this event has closed.")
        case "already_registered", _status:
            return _(
                "This email address or mobile number already has a place at this event. The message we sent "
                "you has a link to manage it."
            )
        case _code, 429:
            return too_many()
        case _code, 404:
            return _("Registration for this event is not open yet. Please try again in a minute.")
        case _code, 409:
            return _("Your place is cancelled, so there is nothing to change.")
    return _("Sorry, something went wrong. Please try again.")


def too_many() -> str:
    return _("You have tried this too many times. Please wait a few minutes, then try again.")


def closed(places: Places, event: Any) -> str:
    """Why the registration form is not there, in words; before registration opens, when it does (in the
    event's time zone), so that the person knows when to come back. `event`: a row of store.EVENT_WITH_SEATS."""
    match places.closed:
        case None:  # open, but full without a waiting list
            return _("Sorry, this event is full and has no waiting list.")
        case Closed.CANCELLED:
            return _("This event has been cancelled.")
        case Closed.POSTPONED:
            return _("This event has been postponed. Registration will open again when it has a new date.")
        case Closed.STARTED:
            return _("Registration has closed: the event has started.")
        case Closed.NOT_YET_OPEN:
            return _("Registration opens on %(when)s.", when=i18n.moment(event.registration_opens_at, event.timezone))


@functools.cache
def _zones() -> tuple[str, ...]:
    """The zones people live in: tzdata's zone.tab (one per region of each country, no old aliases), and UTC."""
    table = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text()
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return tuple(sorted({row[2] for row in rows} | {"UTC"}))


@functools.lru_cache(maxsize=256)
def time_zone_options(selected: str | None) -> Markup:
    """The time zone list's <option>s, `selected` chosen (listed even if it is an alias zone.tab lacks):
    made once per zone, as 400 options built on every form would cost the page more than all the rest."""
    zones = _zones() if selected is None or selected in _zones() else tuple(sorted((*_zones(), selected)))
    return Markup("").join(
        Markup('<option value="{0}"{1}>{2}</option>').format(
            zone, Markup(" selected") if zone == selected else Markup(""), zone.replace("_", " ")
        )
        for zone in zones
    )
