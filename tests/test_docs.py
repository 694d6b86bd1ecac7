"""The docs say what the code does: the message table in docs/messages.md against the handler tables."""

import re

import pytest

from gather_notifications.handlers import handlers as notifications_handlers
from gather_shared import messages
from gather_shared.config import Settings
from gather_shared.testing import REPO
from gather_signup.handlers import HANDLERS as SIGNUP_HANDLERS


def consumers(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    monkeypatch.setenv("GATHER_ADMIN_TOKEN", "unused")  # settings without touching var/
    return {"signup": set(SIGNUP_HANDLERS),
            "notifications": set(notifications_handlers(Settings.from_env("notifications")))}


def message_table() -> dict[str, list[str]]:
    rows = {}
    for line in (REPO / "docs/messages.md").read_text().splitlines():
        match = re.match(r"\| `([a-z_.0-9]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_every_message_type_is_documented() -> None:
    assert set(message_table()) == set(messages.SCHEMAS)


@pytest.mark.parametrize("service, column", [("signup", 2), ("notifications", 3)])
def test_the_table_says_exactly_which_messages_each_service_reacts_to(
        service: str, column: int, monkeypatch: pytest.MonkeyPatch) -> None:
    documented = {type_ for type_, cells in message_table().items() if cells[column] != "—"}
    assert documented == consumers(monkeypatch)[service]


def test_every_link_in_the_readme_and_docs_points_at_a_file_that_exists() -> None:
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
