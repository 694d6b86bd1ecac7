"""Pages rendered once per state. An event page, or a page of the listing, reads the same for everyone
until an event, its seats, or the hour (started, not yet open) changes; only the registration form's CSRF
token differs from one person to the next. So the HTML is kept per state (in each worker process, the
newest few hundred) and the token is written into it at each request: rendering in three languages, with
a time zone list and a form, costs several times the query that tells the state (make bench: the pages
must answer at least half as fast as a bare page rendering the same rows).

A state's key holds everything the HTML depends on, so nothing needs invalidating: a new event version or
seat count is a new key, and the old entry ages out."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask_wtf.csrf import generate_csrf

#: Written where the CSRF token goes (the `csrf` macro); never otherwise in a page (no person types NULs).
TOKEN_SLOT = "\x00csrf-token\x00"
MAX_PAGES = 256

_pages: OrderedDict[Hashable, str] = OrderedDict()


_SLOT_BYTES = TOKEN_SLOT.encode()


def fill_token(body: bytes) -> bytes:
    """A page's body with this person's CSRF token written in (which sets the CSRF cookie), if it has a
    form: app.py does it for every page."""
    return body.replace(_SLOT_BYTES, generate_csrf().encode()) if _SLOT_BYTES in body else body


def page(key: Hashable, render: Callable[[], str]) -> str:
    """The page for state `key`, rendered by `render()` the first time (app.py writes the person's CSRF
    token into every page, as into this one)."""
    html = _pages.get(key)
    if html is None:
        html = render()
        _pages[key] = html
        if len(_pages) > MAX_PAGES:
            _pages.popitem(last=False)
    else:
        _pages.move_to_end(key)
    return html


def event_state(event: Any) -> tuple[Any, ...]:
    """What an event's pages show of a row of store.EVENT_WITH_SEATS / store.listing: its version (a new
    one for any change of the event) and its seats."""
    return (
        event.id,
        event.version,
        event.confirmed,
        event.waitlisted,
        event.seats_capacity,
        event.seats_waitlist_enabled,
    )
