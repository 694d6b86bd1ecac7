"""The attendee's whole journey through the pages, against the whole platform running as separate
processes (the Procfile, on the embedded default): find an event, ask for a place, follow the link from
the message when the event asks for one, manage the place, change details, cancel, delete, unsubscribe.

A browser here is a `requests.Session` (it keeps the CSRF cookie and follows redirects as one does); the
same journey in a real browser, with axe, is the browser suite's."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from gather_shared.testing import Client, Platform, wait_for

#: Reminders go out 3595 s before an event: one starting in an hour gets its reminder within seconds, with
#: the unsubscribe link in it. (Events a week away, as most here, get theirs next week: never.)
OFFSETS = "3595s"

Read = Callable[[Any], Any]


class Browser:
    """One person's browser on the attendee pages."""

    def __init__(self, platform: Platform, read: Read) -> None:
        self.base = platform.urls["pages"]
        self.http = requests.Session()
        self.read = read
        self.last: requests.Response | None = None

    def get(self, path_or_url: str, **kwargs: Any) -> Any:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        self.last = self.http.get(url, timeout=30, **kwargs)
        return self.read(self.last)

    def submit(self, shown: Any, changes: dict[str, Any], selector: str = "main form[method=post]") -> Any:
        """Fill in the page's form as a person would and send it."""
        form = shown.one(selector)
        fields = shown.form_fields(selector) | changes
        action = form.get("action") or self.last.url
        url = action if action.startswith("http") else self.base + action
        self.last = self.http.post(url, data={k: v for k, v in fields.items() if v is not None}, timeout=30)
        return self.read(self.last)

    @property
    def path(self) -> str:
        """The path of the page shown (a browser keeps the form's #fragment across a redirect: dropped)."""
        return urlsplit(self.last.url).path


@pytest.fixture
def browser(platform: Platform, read: Read) -> Browser:
    return Browser(platform, read)


def listed(browser: Browser, event_id: str) -> Any:
    """The event page, once the pages have heard of the event."""
    wait_for(lambda: requests.get(f"{browser.base}/events/{event_id}", timeout=10).status_code == 200)
    return browser.get(f"/events/{event_id}")


def places(browser: Browser, event_id: str) -> str:
    return browser.get(f"/events/{event_id}").one("dd .tag").get_text(strip=True)


def emails_to(platform: Platform, address: str) -> list[str]:
    """The text of every email written to `address` so far (the embedded default's .eml files)."""
    texts = []
    for path in sorted(Path(platform.workdir, "var/outbox/email").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(message["To"]):
            texts.append(message.get_body(preferencelist=("plain",)).get_content())
    return texts


def link_in(platform: Platform, address: str, pattern: str) -> str:
    """The first match of `pattern` in the emails to `address`, once one has arrived."""

    def find() -> str | None:
        for text in emails_to(platform, address):
            match = re.search(pattern, text)
            if match:
                return match.group(1)
        return None

    return wait_for(find, message=f"an email to {address} with {pattern}")


def ask_for_a_place(platform: Platform, browser: Browser, event_id: str, **details: Any) -> Any:
    """Fill in the registration form; then, if the event sends a link to check the contact, follow it
    from the message and confirm. Returns the page the person ends on."""
    shown = listed(browser, event_id)
    answer = {"display_name": "Robin", "email": "robin@example.org", "channels": ["email"]} | details
    shown = browser.submit(shown, answer)
    if browser.path.endswith("/check-your-messages"):
        assert shown.one("h1").get_text(strip=True) == "Check your messages"
        token = link_in(platform, answer["email"], r"/verify/([^\s\"<>]+)")
        confirm = browser.get(f"/verify/{token}")
        assert confirm.one("h1").get_text(strip=True) == "Confirm your place"
        shown = browser.submit(confirm, {})  # the place's own page (signup answers with its manage token)
        assert "Thank you" in shown.text(".notification-banner")
    return shown


def when(shown: Any) -> str:
    """What a page says after "When": the event's date and time."""
    term = next(dt for dt in shown.soup.select("main dt") if dt.get_text(strip=True) == "When")
    return " ".join(term.find_next_sibling("dd").get_text(" ").split())


def test_find_ask_for_a_place_see_it_change_details_and_cancel(
    platform: Platform, api: Client, organizer_key: str, browser: Browser
) -> None:
    event = api.published_event(organizer_key, title="Journey circle", capacity=10, timezone="America/New_York")
    wait_for(lambda: "Journey circle" in browser.get("/", params={"q": "journey"}).text())
    listing = browser.get("/", params={"q": "journey"})
    event_page = browser.get(listing.one(".event-list h3 a")["href"])

    shown = ask_for_a_place(platform, browser, event["id"], display_name="Robin", email="robin@example.org")
    assert shown.one("h1").get_text(strip=True) == "You have a place"
    # The listing, the event page and the place's page say when in the same words, in the event's zone.
    assert when(listing) == when(event_page) == when(shown)
    assert when(shown).endswith(("(Eastern Standard Time)", "(Eastern Daylight Time)"))
    assert browser.last.headers["Cache-Control"] == "no-store"
    manage_path = browser.path
    assert re.fullmatch(r"/manage/[0-9a-f-]{36}/[^/]+", manage_path)
    wait_for(lambda: places(browser, event["id"]) == "9 places left", message="the seat counted")

    shown = browser.get(manage_path)
    shown = browser.submit(shown, {"display_name": "Rob", "reminders": "y"})
    assert "Your changes are saved." in shown.text(".notification-banner")
    assert shown.one("#display_name")["value"] == "Rob"
    assert shown.one("#reminders").has_attr("checked")

    confirm = browser.get(shown.one("a[href$='/cancel']")["href"])
    assert confirm.one("h1").get_text(strip=True) == "Are you sure you want to cancel your place?"
    shown = browser.submit(confirm, {})
    assert shown.one("h1").get_text(strip=True) == "Your place is cancelled"
    assert shown.soup.select("form#details, input[name=display_name]") == []
    wait_for(lambda: places(browser, event["id"]) == "10 places left", message="the seat freed")

    # No token of a link reaches the access log.
    token = manage_path.rsplit("/", 1)[1]
    wait_for(lambda: "/manage/" in platform.tail("pages", 400), message="the access log")
    log = platform.tail("pages", 400)
    assert token not in log
    assert "/[redacted]" in log


def test_a_full_event_puts_the_next_person_on_the_waiting_list_until_a_place_frees(
    platform: Platform, api: Client, organizer_key: str, read: Read
) -> None:
    event = api.published_event(
        organizer_key,
        title="Online circle",
        capacity=1,
        format="online",
        venue=None,
        online_url="https://meet.example/r1",
    )
    first, second = Browser(platform, read), Browser(platform, read)
    seated = ask_for_a_place(platform, first, event["id"], display_name="Ada", email="ada@example.org")
    assert seated.one("h1").get_text(strip=True) == "You have a place"
    assert "https://meet.example/r1" in seated.text()  # confirmed, online: the link is theirs
    wait_for(lambda: places(second, event["id"]) == "Full – waiting list open", message="the event full")

    shown = listed(second, event["id"])
    assert shown.one("#register").get_text(strip=True) == "Join the waiting list"
    waiting = ask_for_a_place(platform, second, event["id"], display_name="Bo", email="bo@example.org")
    assert waiting.one("h1").get_text(strip=True) == "You are on the waiting list"
    assert "You are number 1 in the queue" in waiting.text()
    assert "meet.example" not in second.last.text  # not confirmed: no link
    waiting_path = second.path

    first.submit(first.get(seated.one("a[href$='/cancel']")["href"]), {})
    promoted = second.get(waiting_path)
    assert promoted.one("h1").get_text(strip=True) == "You have a place"
    assert "https://meet.example/r1" in promoted.text()


def test_errors_from_the_signup_service_are_said_next_to_the_field_with_the_values_kept(
    platform: Platform, api: Client, organizer_key: str, browser: Browser
) -> None:
    event = api.published_event(organizer_key, title="Careful circle")
    shown = listed(browser, event["id"])
    shown = browser.submit(
        shown, {"display_name": "Robin", "email": "robin@@example", "phone": "12", "channels": ["email", "sms"]}
    )
    assert browser.last.status_code == 422
    assert shown.soup.title.get_text().startswith("Error:")
    assert shown.text("#email-error") == "Error: Enter an email address in the correct format, like name@example.com"
    assert shown.text("#phone-error") == "Error: Enter a mobile number in international format, like +44 7700 900982"
    assert shown.one("#email")["value"] == "robin@@example"
    assert {a["href"] for a in shown.soup.select(".error-summary a")} == {"#email", "#phone"}


def test_a_full_event_without_a_waiting_list_says_so_instead_of_taking_the_form(
    platform: Platform, api: Client, organizer_key: str, read: Read
) -> None:
    event = api.published_event(organizer_key, title="Tiny circle", capacity=1, waitlist_enabled=False)
    late = Browser(platform, read)
    stale_form = listed(late, event["id"])  # read while a place was still free
    ask_for_a_place(platform, Browser(platform, read), event["id"], email="first@example.org")
    shown = late.submit(stale_form, {"display_name": "Late", "email": "late@example.org", "channels": ["email"]})
    assert late.last.status_code == 409
    assert "full" in shown.text(".error-summary")


def test_cancel_and_delete_my_details_asks_first_then_forgets_them(
    platform: Platform, api: Client, organizer_key: str, browser: Browser
) -> None:
    event = api.published_event(organizer_key, title="Private circle")
    shown = ask_for_a_place(platform, browser, event["id"], email="forget.me@example.org")
    delete = browser.get(shown.one("a[href$='/delete']")["href"])
    not_ticked = browser.submit(delete, {})
    assert browser.last.status_code == 422
    assert "Tick the box to confirm you want your details deleted" in not_ticked.text(".error-summary")
    done = browser.submit(not_ticked, {"understood": "y"})
    assert browser.path == f"/events/{event['id']}/details-deleted"
    assert done.one("h1").get_text(strip=True) == "Your details are deleted"
    assert "forget.me" not in browser.last.text


def test_the_reminders_unsubscribe_link_asks_then_stops_them(
    platform: Platform, api: Client, organizer_key: str, browser: Browser
) -> None:
    starts = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    event = api.published_event(
        organizer_key,
        title="Soon circle",
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=1)).isoformat(),
    )
    ask_for_a_place(platform, browser, event["id"], email="remind.me@example.org", reminders="y")
    token = link_in(platform, "remind.me@example.org", r"/unsubscribe/([^\s\"<>]+)")
    ask = browser.get(f"/unsubscribe/{token}")
    assert ask.one("h1").get_text(strip=True) == "Stop reminders?"
    done = browser.submit(ask, {})
    assert done.one("h1").get_text(strip=True) == "Reminders stopped"
    assert browser.get("/unsubscribe/not-a-token").status == 200  # asking is harmless
    assert browser.submit(browser.read(browser.last), {}).status == 404
