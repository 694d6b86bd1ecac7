"""The docs say what the code does: the message table in docs/messages.md against the handler tables, and the
timings the docs quote against the constants that set them."""

import re

import pytest

from gather_notifications import sender
from gather_notifications.handlers import handlers as notifications_handlers
from gather_pages.handlers import handlers as pages_handlers
from gather_shared import messages
from gather_shared.bus import consumer, relay, topology
from gather_shared.config import Settings
from gather_shared.testing import REPO
from gather_signup.handlers import handlers as signup_handlers


def consumers(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    monkeypatch.setenv("GATHER_ADMIN_TOKEN", "unused")  # settings without touching var/
    return {
        "signup": set(signup_handlers(Settings.from_env("signup"))),
        "notifications": set(notifications_handlers(Settings.from_env("notifications"))),
        "pages": set(pages_handlers(Settings.from_env("pages"))),
    }


def message_table() -> dict[str, list[str]]:
    rows = {}
    for line in (REPO / "docs/messages.md").read_text().splitlines():
        match = re.match(r"\| `([a-z_.0-9]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_every_message_type_is_documented() -> None:
    assert set(message_table()) == set(messages.SCHEMAS)


def test_the_table_says_which_service_sends_each_message_as_consumers_check_it() -> None:
    for type_, cells in message_table().items():
        assert f"/gather/{cells[0]}" == topology.sender(type_), type_


@pytest.mark.parametrize("service, column", [("signup", 2), ("notifications", 3), ("pages", 4)])
def test_the_table_says_exactly_which_messages_each_service_reacts_to(
    service: str, column: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = {type_ for type_, cells in message_table().items() if cells[column] != "—"}
    assert documented == consumers(monkeypatch)[service]


def test_every_link_in_the_readme_and_docs_points_at_a_file_that_exists() -> None:
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def test_the_timings_quoted_in_the_docs_are_the_ones_in_the_code() -> None:
    architecture = " ".join((REPO / "docs/architecture.md").read_text().split())
    for quoted in (
        f"every {_ms(relay.RELAY_POLL_BUSY_SECONDS)} while messages keep coming",
        f"every {_ms(relay.RELAY_POLL_IDLE_SECONDS)} once it has published nothing for {relay.RELAY_BUSY_SECONDS:g} s",
        f"nothing more came within {_ms(consumer.BATCH_WAIT_SECONDS)}, at {consumer.BATCH_MAX} messages",
        f"has waited {_ms(consumer.BATCH_MAX_AGE_SECONDS)}",
        f"may send it {consumer.PREFETCH} unacked messages",
        f"dead letters expire after {topology.DEAD_LETTER_TTL_SECONDS // 86400} days",
    ):
        assert quoted in architecture
    notifications = " ".join((REPO / "docs/notifications.md").read_text().split())
    low, high = sender.POLL_SECONDS * 0.5, sender.POLL_SECONDS * 1.5  # the threads' jittered pause
    for quoted in (
        f"The sender runs {sender.SEND_WORKERS} threads",
        f"a batch of up to {sender.BATCH_SIZE} due",
        f"looks again after {low * 1000:g}–{high * 1000:g} ms",
        f"(`NOTIFY` on `{sender.DUE_NOW_CHANNEL}`",
    ):
        assert quoted in notifications
