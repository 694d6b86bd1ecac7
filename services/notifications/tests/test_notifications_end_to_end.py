"""Across separate processes, as `make run` starts them: publish, register (following the link sent to the
contact), change the time, cancel — each attendee receives exactly the expected messages, once. On the
platform the cross-service tests share (the plugin's `platform`): each test's attendees are its own."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser

import icalendar

from gather_shared.testing import Client, Platform, unique_email, unique_phone, verify_token_sent_to, wait_for


def sent(client: Client, signup_id: str, *expected: tuple[str, str]) -> list[tuple[str, str]]:
    """Wait until these (kind, channel) notifications of a registration are sent; returns all not planned
    as reminders."""

    def done() -> list[tuple[str, str]] | None:
        items = [n for n in client.notifications(signup_id=signup_id) if n["kind"] != "reminder"]
        got = [(n["kind"], n["channel"]) for n in items if n["status"] == "sent"]
        return got if Counter(expected) <= Counter(got) else None

    return wait_for(done, timeout=60, message=f"{expected} to be sent")


def test_each_attendee_receives_exactly_the_expected_messages_once(platform: Platform) -> None:
    client = Client(platform)
    api_key = client.organizer()["api_key"]
    event = client.published_event(api_key, title="Mindful walking group", capacity=1, waitlist_enabled=True)

    alice_email, alice_phone, bob_email = unique_email("alice"), unique_phone(), unique_email("bob")
    details = {"display_name": "Alice", "email": alice_email, "phone": alice_phone}
    asked = client.register(event["id"], **details, channels=["email", "sms"], consent={"reminders": True})
    assert asked.status_code == 202, asked.text
    # The link goes to each channel; following either one confirms the place.
    by_email, _ = wait_for(
        lambda: (
            all(links := [verify_token_sent_to(platform.workdir, details[c]) for c in ("email", "phone")]) and links
        ),
        timeout=60,
        message="a verify link by email and by SMS",
    )
    alice = client.call("POST", "signup", f"/v1/verifications/{by_email}").json()
    assert alice["status"] == "confirmed"
    bob = client.register_verified(
        event["id"], display_name="Bob", email=bob_email, channels=["email"], consent={"reminders": True}
    ).json()
    assert bob["status"] == "waitlisted"
    sent(client, alice["id"], ("verify_contact", "email"), ("verify_contact", "sms"))
    sent(client, alice["id"], ("signup_confirmed", "email"), ("signup_confirmed", "sms"))
    sent(client, bob["id"], ("verify_contact", "email"), ("waitlisted", "email"))

    later = datetime.fromisoformat(event["starts_at"]) + timedelta(days=1)
    response = client.call(
        "PATCH",
        "events",
        f"/v1/events/{event['id']}",
        api_key,
        json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat()},
    )
    assert response.status_code == 200, response.text
    sent(client, alice["id"], ("event_changed", "email"), ("event_changed", "sms"))
    sent(client, bob["id"], ("event_changed", "email"))

    response = client.call("DELETE", "signup", f"/v1/signups/{alice['id']}", alice["manage_token"])
    assert response.status_code == 200, response.text
    sent(client, alice["id"], ("signup_cancelled", "email"), ("signup_cancelled", "sms"))
    sent(client, bob["id"], ("promoted", "email"))

    response = client.call(
        "POST", "events", f"/v1/events/{event['id']}/cancel", api_key, json={"reason": "The park is closed"}
    )
    assert response.status_code == 200, response.text
    bob_got = sent(client, bob["id"], ("event_cancelled", "email"))
    alice_got = sent(client, alice["id"])

    assert Counter(alice_got) == Counter(
        {
            (kind, channel): 1
            for kind in ("verify_contact", "signup_confirmed", "event_changed", "signup_cancelled")
            for channel in ("email", "sms")
        }
    )
    assert Counter(bob_got) == Counter(
        {
            (kind, "email"): 1
            for kind in ("verify_contact", "waitlisted", "event_changed", "promoted", "event_cancelled")
        }
    )
    reminders = [n for n in client.notifications(event_id=event["id"]) if n["kind"] == "reminder"]
    assert reminders and {n["status"] for n in reminders} == {"cancelled"}  # planned, re-planned, dropped

    mails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (platform.workdir / "var/outbox/email").glob("*.eml")
    ]
    mails = [mail for mail in mails if mail["To"] in (alice_email, bob_email)]  # the platform is shared
    subjects = Counter((mail["To"], mail["Subject"].split(":")[0]) for mail in mails)
    assert subjects == Counter(
        {
            (alice_email, "Confirm your place"): 1,
            (alice_email, "You're registered"): 1,
            (alice_email, "Changed"): 1,
            (alice_email, "Registration cancelled"): 1,
            (bob_email, "Confirm your place"): 1,
            (bob_email, "You're on the waitlist"): 1,
            (bob_email, "Changed"): 1,
            (bob_email, "A place is yours"): 1,
            (bob_email, "Cancelled"): 1,
        }
    )
    sms = [json.loads(line) for line in (platform.workdir / "var/outbox/sms.jsonl").read_text().splitlines()]
    assert [m["to"] for m in sms].count(alice_phone) == 4

    # Alice's calendar follows: one entry, added, moved, then removed when she cancelled.
    alice_mails = {mail["Subject"].split(":")[0]: mail for mail in mails if mail["To"] == alice_email}
    invites = [
        icalendar.Calendar.from_ical(next(alice_mails[subject].iter_attachments()).get_content())
        for subject in ("You're registered", "Changed", "Registration cancelled")
    ]
    assert [str(cal["method"]) for cal in invites] == ["REQUEST", "REQUEST", "CANCEL"]
    entries = [cal.walk("VEVENT")[0] for cal in invites]
    assert len({str(entry["uid"]) for entry in entries}) == 1
    assert entries[0]["sequence"] < entries[1]["sequence"] == entries[2]["sequence"]
    assert entries[1].decoded("dtstart") == later
    changed = alice_mails["Changed"].get_body(("plain",)).get_content()
    assert "- When: was " in changed and ", now " in changed


def test_an_organizers_announcement_reaches_its_registrants_and_no_other_organizer_can_send_one(
    platform: Platform,
) -> None:
    client = Client(platform)
    api_key = client.organizer()["api_key"]
    other_key = client.organizer("Another group")["api_key"]
    link = "https://meet.example/circle"
    event = client.published_event(
        api_key, title="Online circle", format="online", venue=None, online_url=link, capacity=1, waitlist_enabled=True
    )
    alice_email, bob_email = unique_email("alice"), unique_email("bob")
    alice = client.register_verified(event["id"], display_name="Alice", email=alice_email).json()
    bob = client.register_verified(event["id"], display_name="Bob", email=bob_email).json()
    assert (alice["status"], bob["status"]) == ("confirmed", "waitlisted")
    sent(client, alice["id"], ("signup_confirmed", "email"))
    sent(client, bob["id"], ("waitlisted", "email"))

    path = f"/v1/events/{event['id']}/announcements"
    note = {"subject": "Starting 10 minutes late", "body": f"Same link: {link}", "to": ["confirmed", "waitlisted"]}
    assert client.call("POST", "notifications", path, json=note).status_code == 401
    refused = client.call("POST", "notifications", path, other_key, json=note)
    assert refused.status_code == 403, refused.text
    response = client.call("POST", "notifications", path, api_key, json=note)
    assert response.status_code == 202, response.text
    assert response.json()["recipients"] == 2
    sent(client, alice["id"], ("announcement", "email"))
    sent(client, bob["id"], ("announcement", "email"))

    mails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (platform.workdir / "var/outbox/email").glob("*.eml")
    ]
    told = {str(m["To"]): m for m in mails if str(m["Subject"]).startswith("Starting 10 minutes late")}
    assert set(told) == {alice_email, bob_email}  # and no one else, of every test on the shared platform
    assert link in told[alice_email].get_body(("plain",)).get_content()
    assert "meet.example" not in told[bob_email].as_string()
