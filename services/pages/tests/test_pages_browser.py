"""The attendee pages in a real browser (Chromium, driven by Playwright), against the whole platform running
as separate processes: every page state has no axe-core violation of WCAG 2.2 AA and fits 320 px and 200 %
zoom without scrolling sideways; the whole journey works with the keyboard alone and with JavaScript off;
no page asks anything of another origin, and the one cookie is the CSRF one.

Chromium is Debian's (`apt-get install chromium`; .ci/run installs it): Playwright's own browser download
is not reachable here. Without it these tests are skipped with one line, or fail with
GATHER_REQUIRE_SERVICES=1, as the other tiers do.

`make screenshots` runs `test_every_page_state_is_accessible` with GATHER_SCREENSHOTS=docs/screenshots: each
state the test checks is also written there as a PNG, for the README's gallery."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from gather_pages.app import CSRF_COOKIE
from gather_shared.testing import REPO, Client, Platform, messages_to, wait_for

CHROMIUM = Path("/usr/bin/chromium")
#: Headless in a container: no sandbox (root), no GPU, and none of Chromium's own calls home, so that the
#: only requests are the pages'.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: WCAG 2.2 AA, as axe-core tags its rules (each level includes the ones before it).
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
#: A laptop's window. At 200 % zoom the same window is 640 × 400 CSS pixels: zooming a page is laying it
#: out in a viewport of half the size (and media queries see that size too).
DESKTOP = {"width": 1280, "height": 800}
ZOOM_200 = {"width": 640, "height": 400}
#: WCAG 1.4.10 (reflow): content fits 320 CSS pixels without scrolling in two dimensions.
NARROW = {"width": 320, "height": 640}
#: The width of the README's screenshots: the pages' column (40rem) with a margin.
SCREENSHOT = {"width": 800, "height": 600}
#: Set by `make screenshots`: where each page state is written as a PNG.
SCREENSHOTS = Path(os.environ["GATHER_SCREENSHOTS"]) if os.environ.get("GATHER_SCREENSHOTS") else None
#: Reminders go out 3590 s before an event: moved to start in an hour, an event's reminders (with the
#: unsubscribe link) go out ten seconds later.
OFFSETS = "3590s"

MISSING = f"{CHROMIUM} missing: apt-get install -y chromium (the browser tests need it)"
REQUIRED = os.environ.get("GATHER_REQUIRE_SERVICES") == "1"
if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip(MISSING, allow_module_level=True)  # one line for the module


@pytest.fixture(scope="module", autouse=True)
def chromium_required() -> None:
    """With GATHER_REQUIRE_SERVICES=1, each test fails without Chromium, before any platform starts."""
    if not CHROMIUM.exists():
        pytest.fail(f"GATHER_REQUIRE_SERVICES=1 but {MISSING}", pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Person:
    """One person's browser window on the pages, which notes every request it makes."""

    def __init__(self, browser: Browser, platform: Platform, **options: Any) -> None:
        self.base = platform.urls["pages"]
        self.workdir = platform.workdir
        self.context: BrowserContext = browser.new_context(viewport=DESKTOP, **options)
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page: Page = self.context.new_page()

    def go(self, path_or_url: str) -> Page:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        self.page.goto(url)
        return self.page

    def heading(self) -> str:
        return self.page.locator("h1").inner_text().strip()

    def link_sent_to(self, contact: str, kind: str) -> str:
        """The newest `/verify/…`, `/manage/…` or `/unsubscribe/…` link sent to `contact`, once one came."""
        pattern = re.compile(rf"{re.escape(self.base)}/{kind}/[^\s\"<>]+")

        def newest() -> str | None:
            found = [link for text in messages_to(self.workdir, contact) for link in pattern.findall(text)]
            return found[-1] if found else None

        return wait_for(newest, timeout=60, message=f"a /{kind}/ link sent to {contact}")

    def stayed_home(self) -> None:
        """Nothing was asked of another origin, and the only cookie is the one a form needs against CSRF."""
        assert [url for url in self.requests if not url.startswith(self.base + "/")] == []
        assert {cookie["name"] for cookie in self.context.cookies()} <= {CSRF_COOKIE}

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser: Browser, platform: Platform) -> Iterator[Any]:
    """Open a window for a new person: `people()` or `people(java_script_enabled=False)`."""
    opened: list[Person] = []

    def open_window(**options: Any) -> Person:
        opened.append(Person(browser, platform, **options))
        return opened[-1]

    yield open_window
    for person in opened:
        person.close()


def listed(api: Client, organizer_key: str, base: str, **event: Any) -> dict[str, Any]:
    """Publish an event and wait until the pages have heard of it."""
    published = api.published_event(organizer_key, **event)
    wait_for(lambda: requests.get(f"{base}/events/{published['id']}", timeout=10).status_code == 200)
    return published


#: An event that fills every part of the event page.
RICH_EVENT = {
    "title": "Walk and talk",
    "summary": "A gentle walk in the park, talking as we go.",
    "description": "We meet at the gate and walk for an hour.\n\nTea afterwards, for those who want it.",
    "accessibility": {"step_free": True, "hearing_loop": True, "notes": "The path is flat and paved."},
    "resources": [{"title": "Samaritans", "url": "https://samaritans.example/"}],
}


def in_an_hour() -> dict[str, str]:
    """The times of an event starting in an hour: its reminders go out ten seconds from now (OFFSETS)."""
    starts = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    return {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat()}


def fits(page: Page, viewport: dict[str, int]) -> bool:
    """Whether the page, laid out in `viewport`, needs no scrolling sideways."""
    page.set_viewport_size(viewport)
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def check_state(page: Page, name: str, states: list[str]) -> None:
    """The page as it is now: no axe violation of WCAG 2.2 AA; no sideways scrolling at 320 px or at 200 %
    zoom; written to GATHER_SCREENSHOTS as `NN-name.png` when `make screenshots` asks."""
    states.append(name)
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    assert results.violations_count == 0, f"{name} ({page.url}): {results.generate_report()}"
    assert fits(page, NARROW), f"{name} scrolls sideways at 320 px"
    assert fits(page, ZOOM_200), f"{name} scrolls sideways at 200 % zoom"
    if SCREENSHOTS is not None:
        page.set_viewport_size(SCREENSHOT)
        page.screenshot(path=REPO / SCREENSHOTS / f"{len(states):02d}-{name}.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def check_page(person: Person, heading: str, name: str, states: list[str]) -> None:
    """The person's page has the heading expected of it, and passes check_state as `name`."""
    assert person.heading() == heading
    check_state(person.page, name, states)


def test_every_page_state_is_accessible(api: Client, organizer_key: str, people: Any) -> None:
    robin, bo = people(), people()
    event = listed(api, organizer_key, robin.base, capacity=5, **RICH_EVENT)
    # By the API: Ash, who wants reminders (the unsubscribe page opens from one, at the end), and the one
    # place of the small event, so that Bo waits.
    reminded = api.register_verified(event["id"], email="ash@example.org", consent={"reminders": True})
    assert reminded.status_code == 200, reminded.text
    full = listed(api, organizer_key, robin.base, title="Small circle", capacity=1)
    assert api.register_verified(full["id"], email="first@example.org").status_code == 200
    opens = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0).isoformat()
    later = listed(api, organizer_key, robin.base, title="Later circle", registration_opens_at=opens)
    states: list[str] = []

    page = robin.go("/?q=walk")
    check_state(page, "listing", states)
    page.click(".event-list h3 a")
    check_page(robin, "Walk and talk", "event", states)

    # The form's own check (a blank name) and the signup service's (an email it cannot use) at once.
    page.fill("#email", "robin@@example")
    page.check("#channels")
    page.click("form[method=post] button[type=submit]")
    assert page.locator(".error-summary").is_visible()
    check_state(page, "form-with-errors", states)

    page.fill("#display_name", "Robin")
    page.fill("#email", "robin@example.org")
    page.click("form[method=post] button[type=submit]")
    check_page(robin, "Check your messages", "check-your-messages", states)

    robin.go(robin.link_sent_to("robin@example.org", "verify"))
    check_page(robin, "Confirm your place", "confirm-your-place", states)
    page.click("main button[type=submit]")
    check_page(robin, "You have a place", "verified", states)

    robin.go(robin.link_sent_to("robin@example.org", "manage"))
    check_page(robin, "You have a place", "manage", states)
    page.click("a[href$='/cancel']")
    check_page(robin, "Are you sure you want to cancel your place?", "cancel", states)
    page.click("main button[type=submit]")
    check_page(robin, "Your place is cancelled", "cancelled", states)
    # Ash's reminder goes out once the event is moved to start in an hour: its link opens the unsubscribe
    # page, checked last.
    moved = api.call("PATCH", "events", f"/v1/events/{event['id']}", organizer_key, json=in_an_hour())
    assert moved.status_code == 200, moved.text

    # A full event: the next person waits, and can take their details away altogether.
    wait_for(lambda: "waiting list" in bo.go(f"/events/{full['id']}").locator(".tag").inner_text())
    page = bo.page
    page.fill("#display_name", "Bo")
    page.fill("#email", "bo@example.org")
    page.check("#channels")
    page.click("form[method=post] button[type=submit]")
    bo.go(bo.link_sent_to("bo@example.org", "verify"))
    page.click("main button[type=submit]")
    check_page(bo, "You are on the waiting list", "waitlisted", states)
    bo.go(bo.link_sent_to("bo@example.org", "manage"))
    page.click("a[href$='/delete']")
    check_page(bo, "Cancel your place and delete your details", "delete", states)
    page.check("#understood")
    page.click("main button[type=submit]")
    check_page(bo, "Your details are deleted", "details-deleted", states)

    # The link in Ash's reminder.
    page = robin.go(robin.link_sent_to("ash@example.org", "unsubscribe"))
    check_page(robin, "Stop reminders?", "unsubscribe", states)
    page.click("main button[type=submit]")
    check_page(robin, "Reminders stopped", "reminders-stopped", states)

    # An event whose registration opens later: when it opens, in place of the form.
    page = robin.go(f"/events/{later['id']}")
    assert page.locator("main form[method=post]").count() == 0
    assert "Registration opens on" in page.locator("main").inner_text()
    check_state(page, "registration-not-open", states)
    robin.stayed_home()
    bo.stayed_home()


def focused(page: Page, selector: str) -> bool:
    return page.evaluate("s => document.activeElement !== null && document.activeElement.matches(s)", selector)


def tab_to(page: Page, selector: str, key: str = "Tab", presses: int = 60) -> None:
    """Press Tab (or Shift+Tab) until `selector` has the focus, and check that a person can see where it is."""
    for _ in range(presses):
        page.keyboard.press(key)
        if focused(page, selector):
            style = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, s.boxShadow, s.backgroundColor]; }"
            )
            assert style != ["none", "none", "rgba(0, 0, 0, 0)"], f"{selector} has no visible focus"
            return
    raise AssertionError(f"{key} never reached {selector} on {page.url}")


def press_and_load(page: Page, key: str) -> None:
    """Press `key` on what has the focus, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


def test_the_whole_journey_with_the_keyboard_alone(api: Client, organizer_key: str, people: Any) -> None:
    sam = people()
    event = listed(api, organizer_key, sam.base, title="Keyboard circle")
    page = sam.go("/")

    # Find: the first Tab is the skip link; the search is the first thing in the page's main part.
    page.keyboard.press("Tab")
    assert focused(page, ".skip-link")
    page.keyboard.press("Enter")  # to the main part: no page load
    tab_to(page, "#q")
    page.keyboard.type("keyboard circle")
    press_and_load(page, "Enter")
    assert "q=keyboard+circle" in page.url
    tab_to(page, f".event-list a[href$='/events/{event['id']}']")
    press_and_load(page, "Enter")
    assert sam.heading() == "Keyboard circle"

    # Register, first with the name left out: the error summary takes the focus and leads to the field.
    tab_to(page, "#email")
    page.keyboard.type("sam@example.org")
    tab_to(page, "#channels")
    page.keyboard.press("Space")
    tab_to(page, "form[method=post] button[type=submit]")
    press_and_load(page, "Enter")
    page.wait_for_function("document.activeElement.matches('.error-summary')")  # autofocus, once laid out
    tab_to(page, ".error-summary a[href='#display_name']")
    page.keyboard.press("Enter")
    assert focused(page, "#display_name")
    page.keyboard.type("Sam")
    tab_to(page, "form[method=post] button[type=submit]")
    press_and_load(page, "Enter")
    assert sam.heading() == "Check your messages"

    # Follow the emailed link (opening a link from a message is not a click on the page) and confirm.
    sam.go(sam.link_sent_to("sam@example.org", "verify"))
    tab_to(page, "main button[type=submit]")
    press_and_load(page, "Space")
    assert sam.heading() == "You have a place"

    # Manage: change the name, then cancel.
    sam.go(sam.link_sent_to("sam@example.org", "manage"))
    tab_to(page, "#display_name")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("Sammy")
    tab_to(page, "form[method=post] button[type=submit]")
    press_and_load(page, "Enter")
    assert "Your changes are saved." in page.locator(".notification-banner").inner_text()
    assert page.input_value("#display_name") == "Sammy"
    tab_to(page, "a[href$='/cancel']")
    press_and_load(page, "Enter")
    tab_to(page, "main a[href*='/manage/']:not([href$='/cancel'])")  # past the button: "No, keep my place"
    tab_to(page, "main button[type=submit]", key="Shift+Tab")
    press_and_load(page, "Enter")
    assert sam.heading() == "Your place is cancelled"
    sam.stayed_home()


def test_the_whole_journey_without_javascript(api: Client, organizer_key: str, people: Any) -> None:
    kim = people(java_script_enabled=False)
    event = listed(api, organizer_key, kim.base, title="Plain circle", timezone="Europe/Madrid")
    page = kim.go("/")
    page.fill("#q", "plain circle")
    page.click(".search__row button[type=submit]")
    page.click(f".event-list a[href$='/events/{event['id']}']")
    assert kim.heading() == "Plain circle"
    assert page.input_value("#timezone") == "Europe/Madrid"  # the event's zone, with no script to guess

    page.fill("#display_name", "Kim")
    page.fill("#email", "kim@example.org")
    page.check("#channels")
    page.click("form[method=post] button[type=submit]")
    assert kim.heading() == "Check your messages"
    kim.go(kim.link_sent_to("kim@example.org", "verify"))
    page.click("main button[type=submit]")
    assert kim.heading() == "You have a place"

    kim.go(kim.link_sent_to("kim@example.org", "manage"))
    page.fill("#display_name", "Kimberley")
    page.click("form[method=post] button[type=submit]")
    assert "Your changes are saved." in page.locator(".notification-banner").inner_text()
    page.click("a[href$='/cancel']")
    page.click("main button[type=submit]")
    assert kim.heading() == "Your place is cancelled"
    kim.stayed_home()
