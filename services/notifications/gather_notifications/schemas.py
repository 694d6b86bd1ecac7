"""The HTTP schemas of the notifications service: they validate requests (the SMS provider's webhooks
among them) and generate the OpenAPI document."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from gather_notifications.announcements import MAX_PER_DAY
from gather_shared import web
from gather_shared.vocabulary import ACTIVE_REGISTRATION_STATUSES, Channel, NotificationKind, NotificationStatus

# --- the notification log ---------------------------------------------------------------------------


class NotificationQuery(Schema):
    event_id = fields.UUID(load_default=None)
    signup_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(list(NotificationStatus)))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None)


class NotificationOut(Schema):
    id = fields.UUID()
    event_id = fields.UUID()
    signup_id = fields.UUID(metadata={"description": "the registration it is for"})
    kind = fields.String(metadata={"description": " | ".join(NotificationKind)})
    channel = fields.String(metadata={"description": " | ".join(Channel)})
    status = fields.String(metadata={"description": " | ".join(NotificationStatus)})
    attempts = fields.Integer(metadata={"description": "how many times sending was tried"})
    scheduled_for = fields.AwareDateTime(metadata={"description": "when it is, or was, due"})
    sent_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True, metadata={"description": "why the last try failed, if it did"})


class NotificationPage(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


# --- announcements ----------------------------------------------------------------------------------


class AnnouncementIn(Schema):
    subject = web.Line(required=True, validate=validate.Length(min=1, max=150))
    body = web.Text(required=True, validate=validate.Length(min=1, max=2000))
    to = fields.List(
        fields.String(validate=validate.OneOf(list(ACTIVE_REGISTRATION_STATUSES))),
        required=True,
        validate=validate.Length(min=1, max=len(ACTIVE_REGISTRATION_STATUSES)),
        metadata={"description": "Which registrants it goes to: `confirmed`, `waitlisted` or both."},
    )


class AnnouncementOut(Schema):
    class Meta:
        description = f"At most {MAX_PER_DAY} per event in any 24 hours; past that, 429 `too_many_announcements`."

    id = fields.UUID()
    event_id = fields.UUID()
    subject = fields.String()
    to = fields.List(fields.String(), attribute="audience")
    recipients = fields.Integer(metadata={"description": "How many registrants it goes to."})
    created_at = fields.AwareDateTime()


# --- the SMS provider's webhooks --------------------------------------------------------------------


class InboundSms(Schema):
    class Meta:
        unknown = EXCLUDE

    from_ = fields.String(data_key="From", required=True, validate=validate.Length(min=1, max=20))
    body = fields.String(data_key="Body", required=True, validate=validate.Length(max=2000))


class SmsStatus(Schema):
    class Meta:
        unknown = EXCLUDE

    message_sid = fields.String(data_key="MessageSid", required=True)
    message_status = fields.String(data_key="MessageStatus", required=True)
    error_code = fields.String(data_key="ErrorCode", load_default=None)


class SmsStatusQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    notification = fields.UUID(load_default=None)
