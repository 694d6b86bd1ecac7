"""Every status string of the signup service, in one place."""

# A registration's status.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
CANCELLED = "cancelled"
ACTIVE = (CONFIRMED, WAITLISTED)

# An event's status, as the events service announces it.
DRAFT = "draft"
PUBLISHED = "published"
POSTPONED = "postponed"
EVENT_CANCELLED = "cancelled"
