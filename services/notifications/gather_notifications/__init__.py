"""Gather notifications service: email and SMS to attendees."""
