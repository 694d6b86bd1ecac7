"""Fixtures for the pages' tests: the app on a fresh database (SQLite and PostgreSQL), the messages that
give it events and seat counts, and a reader of its HTML.

Tests whose journey crosses services (registering, verifying, managing, unsubscribing) run the whole
platform as separate processes: test_pages_journey.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup

from gather_pages.app import create_app
from gather_pages.handlers import handlers
from gather_pages.store import metadata
from gather_shared import testing
from gather_shared.testing import Client, Platform, running_platform

#: Nothing answers here: a test that reaches the signup or notifications API sees it down.
NOBODY = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The whole platform as separate processes, once for a test module, sending reminders at the module's
    OFFSETS before an event (GATHER_REMINDER_OFFSETS)."""
    settings = {"GATHER_REMINDER_OFFSETS": request.module.OFFSETS}
    with running_platform(tmp_path_factory.mktemp("platform"), None, None, settings) as p:
        yield p


@pytest.fixture(scope="module")
def api(platform: Platform) -> Client:
    return Client(platform)


@pytest.fixture(scope="module")
def organizer_key(api: Client) -> str:
    return api.organizer()["api_key"]


@pytest.fixture(scope="session")
def service_under_test() -> testing.ServiceUnderTest:
    """For the plugin's `module_app`, `app`, `rt`, `client` and `send`."""
    return testing.ServiceUnderTest(
        "pages",
        create_app,
        metadata,
        {"GATHER_SIGNUP_URL": NOBODY, "GATHER_NOTIFICATIONS_URL": NOBODY},
        handlers=handlers,
    )


@pytest.fixture
def publish(send: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Announce an event (published, in a week, unless overridden); returns its snapshot."""

    def _publish(type_: str = "event.published.v1", **overrides: Any) -> dict[str, Any]:
        snapshot = testing.event_snapshot(**overrides)
        data = {"event": snapshot, "changes": {}} if type_ == "event.updated.v1" else {"event": snapshot}
        send(type_, data)
        return snapshot

    return _publish


@pytest.fixture
def seats(send: Callable[..., Any]) -> Callable[..., None]:
    """Announce an event's seat counts as the signup service does."""

    def _seats(event_id: uuid.UUID, confirmed: int, waitlisted: int = 0, seq: int = 1, **overrides: Any) -> None:
        data = {
            "event_id": event_id,
            "capacity": 10,
            "confirmed": confirmed,
            "waitlisted": waitlisted,
            "waitlist_enabled": True,
            "seq": seq,
        }
        send("signup.availability_changed.v1", data | overrides)

    return _seats


class Page:
    """A page as a person (and a screen reader) meets it."""

    def __init__(self, response: Any) -> None:
        body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
        self.status = getattr(response, "status_code", None)
        self.soup = BeautifulSoup(body, "html.parser")

    def text(self, selector: str = "main") -> str:
        """The words a person reads in `selector`, one space between them."""
        return " ".join(re.sub(r"\s+", " ", node.get_text(" ")).strip() for node in self.soup.select(selector))

    def one(self, selector: str) -> Any:
        [node] = self.soup.select(selector)
        return node

    def form_fields(self, selector: str = "main form[method=post]") -> dict[str, Any]:
        """The values a browser would send for the form (hidden fields included), ticked boxes only."""
        form = self.one(selector)
        fields: dict[str, Any] = {}
        for node in form.select("input, select"):
            name = node.get("name")
            if not name or (node.get("type") in ("checkbox", "radio") and not node.has_attr("checked")):
                continue
            if node.name == "select":
                chosen = node.select_one("option[selected]")
                value = chosen.get("value") if chosen else None
            else:
                value = node.get("value", "")
            fields.setdefault(name, []).append(value)
        return {name: values if len(values) > 1 else values[0] for name, values in fields.items()}


@pytest.fixture
def read() -> Callable[[Any], Page]:
    """Read a response as a page."""
    return Page
