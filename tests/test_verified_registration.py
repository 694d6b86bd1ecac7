"""Verified registration across the running processes, on PostgreSQL and RabbitMQ: the answer to a
request tells nobody whether a contact attends (the attendance oracle is closed), each request sends one
message, to the contact that holds it, and no token is kept anywhere: not in any table, not in any
message that went over the broker."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from gather_shared.db import make_engine
from gather_shared.testing import (
    Client,
    ExchangeSpy,
    Platform,
    messages_to,
    unique_email,
    verify_token_sent_to,
    wait_for,
)

ROBIN, SAM, ALEX = unique_email("robin"), unique_email("sam"), unique_email("alex")
#: The secret part of every link a message carries.
LINKED_TOKEN = re.compile(r"/(?:verify|manage/[0-9a-f-]{36}|unsubscribe)/([\w.-]+)")


def every_row(database_url: str) -> str:
    engine = make_engine(database_url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        text = "\n".join(repr(tuple(row)) for table in meta.sorted_tables for row in conn.execute(sa.select(table)))
    engine.dispose()
    return text


def answer(response: Any) -> tuple[int, list[str], str]:
    return response.status_code, sorted(response.json()), response.json()["status"]


@pytest.mark.parametrize("platform", ["real"], indirect=True)
def test_the_same_answer_for_a_registered_a_pending_and_a_new_contact_and_no_token_kept(
    platform: Platform, exchange_spy: ExchangeSpy
) -> None:
    client = Client(platform)
    organizer = client.organizer()
    event = client.published_event(organizer["api_key"], title="Anxiety support circle")  # verified, always

    robin = client.register_verified(event["id"], display_name="Robin", email=ROBIN)
    assert (robin.status_code, robin.json()["status"]) == (200, "confirmed"), robin.text
    assert client.register(event["id"], display_name="Sam", email=SAM).status_code == 202  # never followed
    wait_for(lambda: verify_token_sent_to(platform.workdir, SAM), message="Sam's link")
    wait_for(lambda: len(messages_to(platform.workdir, ROBIN)) == 2, message="Robin's verify link and confirmation")
    before = {contact: messages_to(platform.workdir, contact) for contact in (ROBIN, SAM, ALEX)}

    # Someone tries each address: registered, pending, never seen. Nothing in the answers tells them apart.
    answers = {contact: client.register(event["id"], display_name="Someone", email=contact) for contact in before}
    assert {contact: answer(response) for contact, response in answers.items()} == {
        contact: (202, ["expires_at", "status"], "check_your_messages") for contact in before
    }

    # Each request sent one message, to the address itself: a link to Robin's place, a verify link to Sam's
    # pending registration, a verify link to a new one for Alex.
    # Counted, not compared as sets: a link signed in the same second as the one before it is the same text.
    def new_messages() -> dict[str, str] | None:
        new = {
            c: list((Counter(messages_to(platform.workdir, c)) - Counter(old)).elements()) for c, old in before.items()
        }
        return {c: texts[0] for c, texts in new.items()} if all(len(t) == 1 for t in new.values()) else None

    latest = wait_for(new_messages, timeout=60, message="one new message to each address")
    assert "you are registered already" in latest[ROBIN] and "/manage/" in latest[ROBIN]
    assert "/verify/" in latest[SAM] and "/verify/" in latest[ALEX]
    assert "/manage/" not in latest[SAM] + latest[ALEX]

    attendees = client.call("GET", "signup", f"/v1/events/{event['id']}/signups", organizer["api_key"]).json()
    assert [(a["email"], a["status"]) for a in attendees["items"]] == [(ROBIN, "confirmed")]

    # No token of any link sent, nor the manage token Robin was given, is in any table or message.
    sent = "\n".join(text for contact in before for text in messages_to(platform.workdir, contact))
    secrets = {*LINKED_TOKEN.findall(sent), robin.json()["manage_token"]}
    assert len(secrets) >= 4
    stored = "\n".join(every_row(url) for url in platform.database_urls.values())
    envelopes = "\n".join(copy.body for copy in exchange_spy.copies())
    assert "signup.verification_requested.v1" in envelopes and "signup.manage_link_requested.v1" in envelopes
    for secret in secrets:
        assert secret not in stored
        assert secret not in envelopes
    for path in ("/verify/", "/manage/", "/unsubscribe/"):
        assert path not in stored and path not in envelopes
