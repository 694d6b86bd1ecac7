"""Every word an attendee reads is translated: no text in a template outside `{% trans %}` or `_()`,
catalogs for Spanish and Welsh with every message translated, compiled .mo files that match them, and
emails and SMS in the event's language (English where Gather has no translation)."""

from __future__ import annotations

import json
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import gather_notifications
from gather_notifications import i18n

if TYPE_CHECKING:
    from conftest import World

PACKAGE = Path(gather_notifications.__file__).parent
TEMPLATES = PACKAGE / "templates"
TRANSLATIONS = PACKAGE / "translations"
TRANSLATED = ("es", "cy")
LETTER = re.compile(r"[^\W\d_]")
PHONE = "+447700900123"


def untranslated_text(source: str) -> list[str]:
    """Text of a template (email, SMS or page) that is not inside `{% trans %}` or `{{ _(...) }}`: what is
    left once those, every other Jinja tag, HTML tags and comments are taken out."""
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    source = re.sub(r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}", " ", source, flags=re.S)
    source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", source, flags=re.S)
    source = re.sub(r"<!DOCTYPE[^>]*>|<[^>]*>", " ", source)  # markup, with its attributes (no text in them)
    return [word for word in source.split() if LETTER.search(word)]


def test_the_check_finds_text_outside_translation() -> None:
    assert untranslated_text("{% trans %}Fine {{ title }}{% endtrans %} {{ manage_url }}") == []
    assert untranslated_text('<p>{{ _("Fine") }}</p>') == []
    assert untranslated_text("Oops {% trans %}fine{% endtrans %}") == ["Oops"]
    assert untranslated_text("<td>When</td>") == ["When"]


@pytest.mark.parametrize("template", sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.glob("*/*")))
def test_no_template_has_text_outside_translation(template: str) -> None:
    assert untranslated_text((TEMPLATES / template).read_text()) == []


def source_messages() -> set[str]:
    """The messages the source asks to translate, extracted as babel.cfg says."""
    method_map = [
        ("gather_notifications/**.py", "python"),
        ("gather_notifications/templates/**.txt", "jinja2"),
        ("gather_notifications/templates/**.html", "jinja2"),
    ]
    options = {
        pattern: {"trim_blocks": "true", "lstrip_blocks": "true"}
        for pattern, method in method_map
        if method == "jinja2"
    }
    found = extract_from_dir(PACKAGE.parent, method_map, options)
    return {message for _file, _line, message, _comments, _context in found}


def catalog(language: str) -> Any:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=language)


def test_the_template_catalog_is_up_to_date_with_the_source() -> None:
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert template == source_messages(), "run the extract and update commands in services/notifications/README.md"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_keeping_its_placeholders(language: str) -> None:
    messages = [m for m in catalog(language) if m.id]
    assert {m.id for m in messages} == source_messages()
    for message in messages:
        assert message.string.strip(), f"{language}: untranslated {message.id!r}"
        assert not message.fuzzy, f"{language}: fuzzy {message.id!r}"
        placeholders = sorted(re.findall(r"%\(\w+\)s", message.id))
        assert sorted(re.findall(r"%\(\w+\)s", message.string)) == placeholders, f"{language}: {message.id!r}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_mo_file_is_the_po_file_compiled(language: str) -> None:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == {m.id: m.string for m in catalog(language) if m.id}, "run the compile command in the README"


@pytest.mark.parametrize(("tag", "language"), [("es", "es"), ("es-MX", "es"), ("cy", "cy"), ("fr", "en"), (None, "en")])
def test_a_message_speaks_the_events_language_where_there_is_a_translation(tag: str | None, language: str) -> None:
    assert i18n.language(tag) == language


def emails(workdir: Path) -> list[EmailMessage]:
    return [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (workdir / "var/outbox/email").glob("*.eml")
    ]


def english_sentences(language: str) -> set[str]:
    """The catalog's longer English messages, with their placeholders cut out: none may show in a message
    that speaks `language`."""
    found = set()
    for message in catalog(language):
        if message.id and message.string != message.id:
            found.update(part.strip() for part in re.split(r"%\(\w+\)s|<[^>]+>", message.id) if len(part.strip()) > 12)
    return found


def test_an_event_in_spanish_sends_its_confirmation_in_spanish(world: World, tmp_path: Path) -> None:
    world.publish(language="es", title="Círculo de apoyo", format="hybrid", online_url="https://meet.example/x")
    world.register(phone=PHONE, channels=["email", "sms"], consent_reminders=False, timezone="Europe/Madrid")
    world.run_sender(world.now)

    [mail] = emails(tmp_path)
    assert mail["Subject"] == "Inscripción confirmada: Círculo de apoyo"
    assert mail["Content-Language"] == "es"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Hola, Robin: tienes plaza en Círculo de apoyo." in text
    assert "Cuándo: miércoles 17 de junio de 2026 a las 14:00 CEST (Europe/Madrid)" in text
    assert "Unirse en línea: https://meet.example/x" in text
    assert '<html lang="es">' in html and "Ver, cambiar o cancelar tu inscripción" in html
    for sentence in english_sentences("es"):
        assert sentence not in text and sentence not in html, sentence
    [sms] = [json.loads(line)["body"] for line in (tmp_path / "var/outbox/sms.jsonl").read_text().splitlines()]
    # In GSM-7 letters (é is one, í is not), so that it stays in two segments with its link.
    assert sms.startswith("Gather: tienes plaza en Circulo de apoyo, mié 17 jun 14:00 CEST")
    assert "Gestionar: " in sms


def test_an_event_in_welsh_sends_its_waitlist_notice_in_welsh(world: World, tmp_path: Path) -> None:
    world.publish(language="cy")
    world.register(status="waitlisted", waitlist_position=2)
    world.run_sender(world.now)

    [mail] = emails(tmp_path)
    assert mail["Subject"] == "Rydych chi ar y rhestr aros: Peer support circle"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "rydych chi ar y rhestr aros: chi yw rhif 2." in text
    assert "Pryd: Dydd Mercher 17 Mehefin 2026 am 13:00 BST (Europe/London)" in text


def test_an_event_in_a_language_without_a_translation_sends_english(world: World, tmp_path: Path) -> None:
    world.publish(language="fr")
    world.register(consent_reminders=False)
    world.run_sender(world.now)

    [mail] = emails(tmp_path)
    assert mail["Subject"] == "You're registered: Peer support circle"
    assert mail["Content-Language"] == "en"
