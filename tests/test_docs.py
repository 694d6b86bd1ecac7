"""The docs say what the code does: the message table in docs/messages.md and each service README's messages
against the handler tables, the timings the docs quote against the constants that set them, and every link
and file name in them against the tree, so that they work in a clone of this repository alone."""

import re
from pathlib import Path

import pytest

from gather_notifications import sender
from gather_notifications.handlers import handlers as notifications_handlers
from gather_pages.handlers import handlers as pages_handlers
from gather_shared import messages
from gather_shared.bus import consumer, outbox, relay, topology, transport
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


SERVICE_READMES = sorted((REPO / "services").glob("*/README.md"))
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *SERVICE_READMES]
#: [text](target) and ![alt](target), with an optional "title"
LINK = re.compile(r"\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
#: a word in `code` that names a file: a file name with its extension, a folder ending in /, or a known name
FILE_NAME = re.compile(
    r"(?:\.\.?/)*(?:[\w-][\w.-]*/)*(?:[\w-][\w.-]*\.(?:py|md|html|txt|toml|json|ya?ml|cfg|ini|mo|po|pot|css|js|sh|mako|lock)"
    r"|[\w-][\w.-]*/|Procfile|Makefile|Dockerfile)"
)


def prose(page: Path) -> str:
    """The page without its fenced code blocks (a `#` comment in a shell example is not a heading)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)


def anchors(page: Path) -> set[str]:
    """The anchors of the page's headings, as GitHub makes them (the second of two alike gets `-1`)."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(page), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in found:
            n += 1
            anchor = f"{slug}-{n}"
        found.add(anchor)
    return found


def broken_link(page: Path, target: str) -> str | None:
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not a file of the repository
        return None
    path, _, anchor = target.partition("#")
    if path.startswith("/"):
        return "an absolute path, which works on one machine only"
    file = (page.parent / path).resolve() if path else page
    if not file.is_relative_to(REPO.resolve()):
        return "outside the repository: a clone of it alone has no such file"
    if not file.exists():
        return "no such file"
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        return f"no heading for #{anchor} in {file.name}"
    return None


def test_every_relative_link_in_the_readmes_and_docs_leads_to_a_file_and_heading_of_the_repository() -> None:
    broken = [
        f"{page.relative_to(REPO)}: ({target}): {why}"
        for page in PAGES
        for target in LINK.findall(re.sub(r"`[^`\n]*`", "", prose(page)))
        if (why := broken_link(page, target))
    ]
    assert broken == []


@pytest.mark.parametrize("readme", SERVICE_READMES, ids=lambda readme: readme.parent.name)
def test_a_service_readme_names_only_files_that_exist(readme: Path) -> None:
    """A file named in `code` is looked for where a reader would: in the package, the service's folder and its
    tests, the repository's root, and shared/ (for gather_shared/…)."""
    service = readme.parent
    where = [service / f"gather_{service.name}", service, service / "tests", REPO, REPO / "shared"]
    named = {
        word.strip(",;:()")
        for span in re.findall(r"`([^`\n]+)`", prose(readme))
        for word in span.split()
        if not word.startswith(("/", "-"))
    }
    missing = [name for name in sorted(named) if FILE_NAME.fullmatch(name) and not _found(name, readme, where)]
    assert missing == [], f"{readme.relative_to(REPO)} names files that do not exist (in a clone of the repository)"


def _found(name: str, readme: Path, where: list[Path]) -> bool:
    if name.startswith("."):  # ../../docs/x.md: from the README's folder, and never out of the repository
        path = (readme.parent / name).resolve()
        return path.is_relative_to(REPO.resolve()) and path.exists()
    return any((folder / name).exists() for folder in where)


def readme_messages(readme: Path, line_start: str) -> set[str]:
    """The message types named on the README's line that starts with `line_start` (up to a blank line)."""
    match = re.search(rf"^{line_start}.*?(?=\n\n|\Z)", prose(readme), flags=re.M | re.S)
    assert match, f"{readme.relative_to(REPO)} has no line starting with {line_start!r}"
    return set(re.findall(r"`([a-z_]+\.[a-z_.]+\.v\d+)`", match.group(0)))


@pytest.mark.parametrize("readme", SERVICE_READMES, ids=lambda readme: readme.parent.name)
def test_a_service_readme_lists_the_messages_it_sends_and_reacts_to(
    readme: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = readme.parent.name
    sent = {type_ for type_ in messages.SCHEMAS if topology.sender(type_) == f"/gather/{service}"}
    assert readme_messages(readme, "Sends") == sent
    assert readme_messages(readme, "Reacts to") == consumers(monkeypatch).get(service, set())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def test_the_timings_quoted_in_the_docs_are_the_ones_in_the_code() -> None:
    quoted_in = {
        "docs/architecture.md": (
            f"every {_ms(relay.RELAY_POLL_BUSY_SECONDS)} while messages keep coming",
            f"Once it has found nothing to publish for {relay.RELAY_BUSY_SECONDS:g} s it sleeps",
            f"at most once every {outbox.TELL_RELAY_EVERY_SECONDS:g} s per process",
            f"looking anyway every {relay.RELAY_LOOK_ANYWAY_SECONDS:g} s",
            f"on SQLite it looks every {_ms(relay.RELAY_POLL_IDLE_SECONDS)}",
            f"`NOTIFY` on `{outbox.OUTBOX_CHANNEL}`",
            f"it waits up to {consumer.IDLE_WAIT_SECONDS:g} s for the broker",
            f"polled every {_ms(transport.FILESYSTEM_POLL_SECONDS)}",
            f"`NOTIFY` on `{sender.PLANNED_CHANNEL}`",
            f"On SQLite the clock looks every {_ms(sender.POLL_SECONDS)}",
            f"nothing more came within {_ms(consumer.BATCH_WAIT_SECONDS)}, at {consumer.BATCH_MAX} messages",
            f"has waited {_ms(consumer.BATCH_MAX_AGE_SECONDS)}",
            f"may send it {consumer.PREFETCH} unacked messages",
            f"dead letters expire after {topology.DEAD_LETTER_TTL_SECONDS // 86400} days",
        ),
        "docs/notifications.md": (
            f"The sender runs {sender.SEND_WORKERS} threads",
            f"a batch of up to {sender.BATCH_SIZE} due",
            f"(`NOTIFY` on `{sender.PLANNED_CHANNEL}`",
            f"at most {sender.LOOK_ANYWAY_SECONDS:g} s",
            f"the clock looks every {_ms(sender.POLL_SECONDS)}",
        ),
    }
    for doc, quotes in quoted_in.items():
        text = " ".join((REPO / doc).read_text().split())
        for quoted in quotes:
            assert quoted in text, (doc, quoted)


#: The rooms every service may have (docs/architecture.md, "Layout of a service").
ROOMS = {
    "__init__.py",
    "__main__.py",
    "app.py",
    "bootstrap.py",
    "api.py",
    "schemas.py",
    "announce.py",
    "handlers.py",
    "store.py",
    "templates/",
    "migrations/",
}


@pytest.mark.parametrize("service", ["events", "signup", "notifications", "pages"])
def test_the_layout_in_the_architecture_names_every_module_of_each_service_and_only_those(service: str) -> None:
    text = (REPO / "docs/architecture.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith(f"| {service} |")]
    rule_and_other_cells = "|".join(row.split("|")[2:4])
    named = set(re.findall(r"`([\w/.]+(?:\.py|/))`", rule_and_other_cells)) - {"gather_shared/calendar.py"}
    package = REPO / "services" / service / f"gather_{service}"
    present = {p.name + ("/" if p.is_dir() else "") for p in package.iterdir() if not p.name.startswith((".", "_"))}
    present = {name for name in present if name.endswith((".py", "/"))} - ROOMS
    assert named == present


def test_the_architecture_names_every_module_of_the_shared_library() -> None:
    text = (REPO / "docs/architecture.md").read_text()
    table = text.split("### The shared library", 1)[1].split("\n#", 1)[0]
    named = set(re.findall(r"`([\w/]+(?:\.py|/))`", table))
    package = REPO / "shared/gather_shared"
    modules = {
        str(path.relative_to(package)).split("/")[-1] if path.parent.name in ("bus", "testing") else path.name
        for path in package.rglob("*.py")
        if not path.name.startswith("_")
    }
    assert modules <= named | {"bus/", "testing/"}
