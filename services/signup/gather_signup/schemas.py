"""The HTTP schemas of the signup service: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from gather_shared import web
from gather_shared.vocabulary import LISTED_REGISTRATION_STATUSES, Channel, EventStatus

MAX_PAGE = 100


# --- input ------------------------------------------------------------------------------------------


class Name(web.Line):
    """A name or pseudonym: any text a person types on one line (it is shown in messages and in the
    organizer's CSV), trimmed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class EmailAddress(fields.String):
    """An email address, checked for syntax (not deliverability) and normalised (domain lower-cased)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValidationError(str(exc)) from exc


class PhoneNumber(fields.String):
    """A phone number in international form (+44 20 7946 0958, spaces allowed), normalised to E.164."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError("Not a phone number in international form, e.g. +447911123456.") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError("Not a valid phone number.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _is_timezone(name: str) -> None:
    if not web.is_time_zone(name):
        raise ValidationError("Not an IANA time zone name, e.g. Europe/London.")


class ConsentSchema(Schema):
    reminders = fields.Boolean(load_default=False)


class SignupIn(Schema):
    class Meta:
        unknown = EXCLUDE

    display_name = Name(required=True, validate=validate.Length(min=1, max=60, error="Give 1 to 60 characters."))
    email = EmailAddress(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone = PhoneNumber(load_default=None, allow_none=True)
    channels = fields.List(
        fields.String(validate=validate.OneOf(list(Channel))), required=True, validate=validate.Length(min=1)
    )
    timezone = fields.String(load_default=None, allow_none=True, validate=_is_timezone)
    consent = fields.Nested(ConsentSchema, load_default=lambda: {"reminders": False})

    @validates_schema
    def _contacts(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("email") and not data.get("phone"):
            raise ValidationError("Give an email address or a phone number.", "email")
        channels = data.get("channels", [])
        if Channel.EMAIL in channels and not data.get("email"):
            raise ValidationError("The email channel needs an email address.", "channels")
        if Channel.SMS in channels and not data.get("phone"):
            raise ValidationError("The sms channel needs a phone number.", "channels")


class SignupPatch(Schema):
    """The changes an attendee may make with the manage token; each field is optional."""

    class Meta:
        unknown = EXCLUDE

    display_name = Name(validate=validate.Length(min=1, max=60, error="Give 1 to 60 characters."))
    channels = fields.List(fields.String(validate=validate.OneOf(list(Channel))), validate=validate.Length(min=1))
    timezone = fields.String(allow_none=True, validate=_is_timezone)
    consent = fields.Nested(ConsentSchema)


class ManageQuery(Schema):
    erase = fields.Boolean(load_default=False)


class RemovalIn(Schema):
    """Why the organizer removes a registration: told to the attendee, kindly, in the message that says so."""

    class Meta:
        unknown = EXCLUDE

    reason = web.Line(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": "Told to the attendee, in the message that says they no longer have a place (an SMS "
            "shows its first 100 characters)."
        },
    )


class AttendeeQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(list(LISTED_REGISTRATION_STATUSES)))


# --- output -----------------------------------------------------------------------------------------


class CheckYourMessagesOut(Schema):
    """The answer to a registration that waits for its contact's verification: the same whoever asks."""

    status = fields.String(metadata={"description": "always check_your_messages"})
    expires_at = fields.AwareDateTime(metadata={"description": "when the link sent to the contact stops working"})


class _Place(Schema):
    """What every answer about one registration starts with: whose place, where it stands."""

    id = fields.UUID()
    event_id = fields.UUID()
    status = fields.String()
    waitlist_position = fields.Integer(allow_none=True)


class RegisteredOut(_Place):
    manage_token = fields.String()
    created_at = fields.AwareDateTime()


class RegistrationOut(_Place):
    display_name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    channels = fields.List(fields.String())
    timezone = fields.String(allow_none=True)
    consent = fields.Nested(ConsentSchema)
    erased = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class RemovedOut(RegistrationOut):
    promoted = fields.List(
        fields.UUID(), metadata={"description": "The registrations that got the seat it freed, longest-waiting first."}
    )


class EventSummary(Schema):
    """The event a registration is for, as the attendee managing it sees it."""

    title = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    status = fields.String(metadata={"description": " | ".join(EventStatus)})


class ManagedRegistrationOut(RegistrationOut):
    event = fields.Nested(EventSummary)


class AttendeePage(Schema):
    items = fields.List(fields.Nested(RegistrationOut))
    next_cursor = fields.String(allow_none=True)


class AvailabilityOut(Schema):
    capacity = fields.Integer(allow_none=True)
    confirmed = fields.Integer()
    waitlisted = fields.Integer()
    remaining = fields.Integer(allow_none=True)
    waitlist_enabled = fields.Boolean()
    accepting = fields.Boolean()
