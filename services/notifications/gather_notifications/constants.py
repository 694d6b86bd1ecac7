"""Every kind, channel and status string of the notifications service, in one place (see the contract)."""

# Kinds: what a notification is about.
SIGNUP_CONFIRMED = "signup_confirmed"
WAITLISTED = "waitlisted"
PROMOTED = "promoted"
SIGNUP_CANCELLED = "signup_cancelled"
EVENT_CHANGED = "event_changed"
EVENT_POSTPONED = "event_postponed"
EVENT_CANCELLED = "event_cancelled"
REMINDER = "reminder"
KINDS = (
    SIGNUP_CONFIRMED,
    WAITLISTED,
    PROMOTED,
    SIGNUP_CANCELLED,
    EVENT_CHANGED,
    EVENT_POSTPONED,
    EVENT_CANCELLED,
    REMINDER,
)

#: Kinds an attendee may unsubscribe from; all others concern their registration and always go out by
#: email (they carry no List-Unsubscribe header).
NON_TRANSACTIONAL = frozenset({REMINDER})

#: News about the event itself: urgent in SMS quiet hours when the event starts before they end.
EVENT_NEWS = frozenset({EVENT_CHANGED, EVENT_POSTPONED, EVENT_CANCELLED})

EMAIL = "email"
SMS = "sms"

# Notification lifecycle: pending → sending → sent (→ delivered / undelivered), or failed / suppressed /
# cancelled.
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
SUPPRESSED = "suppressed"
CANCELLED = "cancelled"
STATUSES = (PENDING, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, SUPPRESSED, CANCELLED)

# Registration statuses, as the signup service sends them.
CONFIRMED = "confirmed"
WAITLISTED_REGISTRATION = "waitlisted"
CANCELLED_REGISTRATION = "cancelled"

# Event statuses, as the events service sends them.
PUBLISHED = "published"
EVENT_POSTPONED_STATUS = "postponed"
EVENT_CANCELLED_STATUS = "cancelled"

#: The PostgreSQL NOTIFY channel on which the consumer wakes the sender when it planned a notification
#: that is due now (gather_shared.db.notify / listen).
DUE_NOW_CHANNEL = "gather_notifications_due"
