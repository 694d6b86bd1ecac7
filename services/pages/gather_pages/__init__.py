"""Gather attendee pages: browse, register, verify, manage, unsubscribe — in a browser, one origin."""
