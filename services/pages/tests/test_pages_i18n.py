"""Every word a person reads is translated: no visible text in a template outside `_()`, catalogs for
Spanish and Welsh with every message translated, compiled .mo files that match them, and pages that speak
the event's language."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

import gather_pages

PACKAGE = Path(gather_pages.__file__).parent
SERVICE = PACKAGE.parent
TEMPLATES = PACKAGE / "templates"
TRANSLATIONS = PACKAGE / "translations"
TRANSLATED = ("es", "cy")
#: The README's translation commands, in order.
STEPS = ("extract", "update", "compile")
#: Attributes whose value a person reads or hears.
READ_ATTRIBUTES = {"title", "alt", "aria-label", "placeholder"}
LETTER = re.compile(r"[^\W\d_]")

Publish = Callable[..., dict[str, Any]]
Read = Callable[[Any], Any]


class _VisibleText(HTMLParser):
    """Collects the text and read attributes of HTML whose Jinja parts were replaced by a placeholder."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            read = name in READ_ATTRIBUTES or (name == "value" and dict(attrs).get("type") in ("submit", "button"))
            if read and value and LETTER.search(value.replace(PLACEHOLDER, "")):
                self.found.append(f'{tag} {name}="{value}"')

    def handle_data(self, data: str) -> None:
        # A macro may write an attribute for its caller's tag (` aria-describedby="…"`): not visible text.
        text = re.sub(r'[a-z-]+="[^"]*"', "", data).replace(PLACEHOLDER, "").strip()
        if LETTER.search(text):
            self.found.append(text)


PLACEHOLDER = "\x00"


def untranslated_text(source: str) -> list[str]:
    """Visible text of a template that is not inside `{{ _(...) }}`, `ngettext(...)` or `{% trans %}`."""
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    source = re.sub(r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}", PLACEHOLDER, source, flags=re.S)
    source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", PLACEHOLDER, source, flags=re.S)
    parser = _VisibleText()
    parser.feed(source)
    parser.close()
    return parser.found


def test_the_check_finds_text_outside_translation() -> None:
    assert untranslated_text('<p>{{ _("Fine") }}</p>') == []
    assert untranslated_text("<p>{% trans %}Fine too{% endtrans %}</p>") == []
    assert untranslated_text('<p>Oops {{ _("fine") }}</p>') == ["Oops"]
    assert untranslated_text('<a aria-label="Close">{{ x }}</a>') == ['a aria-label="Close"']
    assert untranslated_text("<p>{{ when() }} – {{ where() }}</p>") == []


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_no_template_shows_text_outside_translation(template: str) -> None:
    assert untranslated_text((TEMPLATES / template).read_text()) == []


def source_messages() -> set[str | tuple[str, ...]]:
    """The messages the source asks to translate, extracted as the README's command does: babel.cfg's
    mapping, Babel's default keywords and `_l`."""
    with open(SERVICE / "babel.cfg") as f:
        method_map, options = parse_mapping_cfg(f)
    found = extract_from_dir(SERVICE, method_map, options, keywords=DEFAULT_KEYWORDS | {"_l": None})
    return {message for _file, _line, message, _comments, _context in found}


def readme_commands() -> list[list[str]]:
    """The pybabel commands of the README's "Translations" section, as a person would paste them."""
    section = (SERVICE / "README.md").read_text().split("## Translations", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def without_dates(text: str) -> str:
    return re.sub(r'"POT-Creation-Date: [^"]*"', "", text)


def test_the_readmes_translation_commands_make_the_committed_catalogs(tmp_path: Path) -> None:
    """Run as written (from services/pages/, on a copy), they give back the committed catalogs: the
    commands work, and nobody edited a catalog by hand past them."""
    copy = tmp_path / "pages"
    shutil.copytree(SERVICE, copy, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    commands = readme_commands()
    assert [command[:2] for command in commands] == [["../../.venv/bin/pybabel", step] for step in STEPS]
    for command in commands:  # the same pybabel, from the virtualenv running the tests
        run = subprocess.run([sys.executable, "-m", "babel.messages.frontend", *command[1:]], cwd=copy, check=False)
        assert run.returncode == 0, command
    made = copy / "gather_pages" / "translations"
    for name in ["messages.pot", *(f"{language}/LC_MESSAGES/messages.po" for language in TRANSLATED)]:
        assert without_dates((made / name).read_text()) == without_dates((TRANSLATIONS / name).read_text()), name
    for language in TRANSLATED:
        mo = f"{language}/LC_MESSAGES/messages.mo"
        assert compiled(made / mo) == compiled(TRANSLATIONS / mo), mo


def compiled(path: Path) -> dict[Any, Any]:
    """A .mo file's messages (its header, with the date it was made, left out)."""
    with open(path, "rb") as f:
        return {str(m.id) if isinstance(m.id, str) else tuple(m.id): str(m.string) for m in read_mo(f) if m.id}


def catalog(language: str) -> Any:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=language)


def test_the_template_catalog_is_up_to_date_with_the_source() -> None:
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    assert template == source_messages(), "run the extract and update commands in services/pages/README.md"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language: str) -> None:
    messages = [m for m in catalog(language) if m.id]
    wanted = source_messages()
    assert {m.id if isinstance(m.id, str) else tuple(m.id) for m in messages} == wanted
    for message in messages:
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(s.strip() for s in strings), f"{language}: untranslated {message.id!r}"
        assert not message.fuzzy, f"{language}: fuzzy {message.id!r}"
    assert not catalog(language).fuzzy


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_mo_file_is_the_po_file_compiled(language: str) -> None:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in read_mo(f) if m.id}
    source = {
        m.id if isinstance(m.id, str) else tuple(m.id): m.string if isinstance(m.string, str) else tuple(m.string)
        for m in catalog(language)
        if m.id
    }
    compiled = {k: v if isinstance(v, str) else tuple(v) for k, v in compiled.items()}
    assert compiled == source, "run the compile command in services/pages/README.md"


@pytest.mark.parametrize(
    ("language", "words"),
    [("es", ("Pedir una plaza", "Quedan 10 plazas", "domingo")), ("cy", ("Gofyn am le", "10 lle ar ôl", "Dydd"))],
)
def test_an_event_page_speaks_the_events_language(
    language: str, words: tuple[str, ...], publish: Publish, client: FlaskClient, read: Read
) -> None:
    from datetime import UTC, datetime

    event = publish(language=language, starts_at=datetime(2031, 1, 5, 18, tzinfo=UTC))
    shown = read(client.get(f"/events/{event['id']}", headers={"Accept-Language": "en"}))
    assert shown.soup.html["lang"] == language
    page = " ".join(shown.soup.get_text(" ").split())
    for word in words:
        assert word in page, word
    english = {m.id for m in catalog(language) if isinstance(m.id, str) and len(m.id) > 12}
    english -= {m.id for m in catalog(language) if m.string == m.id}
    assert [text for text in english if text in page] == []


def test_a_page_about_no_event_speaks_the_browsers_language(client: FlaskClient, read: Read) -> None:
    shown = read(client.get("/", headers={"Accept-Language": "cy, en;q=0.5"}))
    assert shown.soup.html["lang"] == "cy"
    assert shown.one("h1").get_text(strip=True) == "Dod o hyd i grŵp neu ddigwyddiad"
    assert read(client.get("/", headers={"Accept-Language": "de"})).soup.html["lang"] == "en-GB"
