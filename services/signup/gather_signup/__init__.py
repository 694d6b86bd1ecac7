"""Gather signup service: registrations, waitlists and the attendee list."""
