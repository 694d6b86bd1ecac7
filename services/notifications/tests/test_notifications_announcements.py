"""POST /v1/events/{event_id}/announcements: who may send one, to whom it goes and on which channels, the
online link kept from those without a place, quiet hours, and the daily limit."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient

from gather_notifications import announcements
from gather_notifications.store import Event
from gather_shared.db import utcnow
from gather_shared.web import hash_secret

if TYPE_CHECKING:
    from conftest import World

PHONE = "+447700900123"
NOTE = {"subject": "We moved to room 2", "body": "Same time, room 2 on the first floor.\nThe lift works."}


def organizer_key(world: World, organizer_id: uuid.UUID) -> str:
    key = f"key-{uuid.uuid4().hex}"
    world.send(
        "organizer.key_issued.v1", {"organizer_id": organizer_id, "name": "Org", "api_key_hash": hash_secret(key)}
    )
    return key


def announce(client: FlaskClient, key: str | None, event_id: object, **body: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(f"/v1/events/{event_id}/announcements", json=NOTE | body, headers=headers)


def all_emails(workdir: Path) -> list[EmailMessage]:
    """The emails the file outbox wrote."""
    return [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (workdir / "var/outbox/email").glob("*.eml")
    ]


def sms_sent(workdir: Path) -> list[dict[str, str]]:
    path = workdir / "var/outbox/sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def daytime_after(moment: datetime) -> datetime:
    """Noon in London on a day after `moment`: out of quiet hours, and after anything planned by then."""
    return (moment + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def test_an_announcement_goes_to_the_registrants_chosen_on_each_of_their_channels(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    key = organizer_key(world, world.organizer_id)
    event = world.publish(starts_at=utcnow() + timedelta(days=7))
    alice = world.register(email="alice@example.org", phone=PHONE, channels=["email", "sms"], consent_reminders=False)
    bob = world.register(email="bob@example.org", status="waitlisted")
    world.registration_changed(
        world.register(email="gone@example.org", consent_reminders=False), "cancelled", world.now
    )
    world.pending(email="unproven@example.org")

    response = announce(client, key, event["id"], to=["confirmed"])
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert (answer["subject"], answer["to"], answer["recipients"]) == (NOTE["subject"], ["confirmed"], 1)
    response = announce(
        client, key, event["id"], subject="Bring a mat", body="If you have one.", to=["confirmed", "waitlisted"]
    )
    assert response.get_json()["recipients"] == 2

    planned = sorted((n.signup_id, n.channel) for n in world.notifications(kind="announcement"))
    assert planned == sorted(
        [(alice["signup_id"], "email"), (alice["signup_id"], "sms")] * 2 + [(bob["signup_id"], "email")]
    )
    world.run_sender(daytime_after(utcnow()))
    assert {n.status for n in world.notifications(kind="announcement")} == {"sent"}

    mails = all_emails(tmp_path)
    by_subject = {(str(m["To"]), str(m["Subject"])) for m in mails if "Peer support circle)" in str(m["Subject"])}
    assert by_subject == {
        ("alice@example.org", "We moved to room 2 (Peer support circle)"),
        ("alice@example.org", "Bring a mat (Peer support circle)"),
        ("bob@example.org", "Bring a mat (Peer support circle)"),
    }
    [moved] = [m for m in mails if str(m["Subject"]).startswith("We moved")]
    text = moved.get_body(("plain",)).get_content()
    assert "a message from Mind Matters about Peer support circle" in text
    assert "Same time, room 2 on the first floor.\nThe lift works." in text
    assert "<p>The lift works.</p>" in moved.get_body(("html",)).get_content()
    texts = [sms["body"] for sms in sms_sent(tmp_path) if "room 2" in sms["body"] or "mat" in sms["body"]]
    assert len(texts) == 2 and all(t.startswith("Gather, Peer support circle: ") for t in texts)


def test_the_online_link_in_an_announcement_reaches_confirmed_attendees_only(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    key = organizer_key(world, world.organizer_id)
    link = "https://meet.example/room-42"
    event = world.publish(starts_at=utcnow() + timedelta(days=7), format="online", venue=None, online_url=link)
    world.register(email="confirmed@example.org", consent_reminders=False)
    world.register(email="waiting@example.org", status="waitlisted")
    response = announce(
        client,
        key,
        event["id"],
        subject=f"New link: {link}",
        body=f"Join at {link} from 17:55. (Or type MEET.EXAMPLE/room-42?pwd=7 in your browser.)",
        to=["confirmed", "waitlisted"],
    )
    assert response.status_code == 202

    world.run_sender(daytime_after(utcnow()))
    mails = {(str(m["To"]), str(m["Subject"])): m for m in all_emails(tmp_path) if "New link" in str(m["Subject"])}
    confirmed = mails[("confirmed@example.org", f"New link: {link} (Peer support circle)")]
    assert f"Join at {link} from 17:55." in confirmed.get_body(("plain",)).get_content()
    [(to, subject)] = [k for k in mails if k[0] == "waiting@example.org"]
    waiting = mails[(to, subject)]
    assert "meet.example" not in waiting.as_string().lower() and "pwd" not in waiting.as_string()
    assert (
        "Join at [the online link goes to confirmed attendees] from 17:55."
        in waiting.get_body(("plain",)).get_content()
    )


def test_only_the_events_organizer_may_announce(world: World, client: FlaskClient) -> None:
    mine = organizer_key(world, world.organizer_id)
    event = world.publish()
    world.register(consent_reminders=False)
    other = organizer_key(world, uuid.uuid4())

    for key, status in [(None, 401), ("not-a-key", 401), (other, 403)]:
        response = announce(client, key, event["id"], to=["confirmed"])
        assert response.status_code == status, key
        assert response.mimetype == "application/problem+json"
        # Who may not announce learns nothing, not even what a valid announcement looks like.
        assert announce(client, key, event["id"], to=["everyone"]).status_code == status, key
    assert announce(client, mine, uuid.uuid4(), to=["confirmed"]).status_code == 404
    assert announce(client, other, uuid.uuid4(), to=["confirmed"]).status_code == 404
    assert world.notifications(kind="announcement") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "Two\nlines"}, "subject"),
        ({"subject": "x" * 151}, "subject"),
        ({"body": ""}, "body"),
        ({"body": "x" * 2001}, "body"),
        ({"body": "nul \x00"}, "body"),
        ({"to": []}, "to"),
        ({"to": ["cancelled"]}, "to.0"),
        ({"to": "confirmed"}, "to"),
        ({"to": None}, "to"),
        ({"subject": 7}, "subject"),
    ],
)
def test_a_bad_announcement_is_a_422_naming_the_field(
    world: World, client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    key = organizer_key(world, world.organizer_id)
    event = world.publish()
    response = announce(client, key, event["id"], **({"to": ["confirmed"]} | body))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_a_missing_field_or_a_body_that_is_not_json_is_a_422(world: World, client: FlaskClient) -> None:
    key = organizer_key(world, world.organizer_id)
    event = world.publish()
    headers = {"Authorization": f"Bearer {key}"}
    response = client.post(f"/v1/events/{event['id']}/announcements", json={"subject": "Hi"}, headers=headers)
    assert response.status_code == 422 and {"body", "to"} <= set(response.get_json()["errors"])
    response = client.post(
        f"/v1/events/{event['id']}/announcements", data="{", content_type="application/json", headers=headers
    )
    assert response.status_code == 422


def test_a_fourth_announcement_in_a_day_is_refused_with_429_and_when_to_try_again(
    world: World, client: FlaskClient
) -> None:
    key = organizer_key(world, world.organizer_id)
    event = world.publish()
    world.register(consent_reminders=False)
    for n in range(announcements.MAX_PER_DAY):
        assert announce(client, key, event["id"], subject=f"Note {n}", to=["confirmed"]).status_code == 202

    refused = announce(client, key, event["id"], subject="One more", to=["confirmed"])
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["code"] == "too_many_announcements"
    assert 23 * 3600 < int(refused.headers["Retry-After"]) <= 24 * 3600
    assert len(world.notifications(kind="announcement")) == announcements.MAX_PER_DAY
    # The limit is per event: the organizer's other event is not held back.
    other = world.publish()
    assert announce(client, key, other["id"], to=["confirmed"]).status_code == 202


def test_the_daily_limit_is_a_sliding_24_hours(world: World) -> None:
    event = world.publish()
    world.register(consent_reminders=False)
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def send(at: datetime) -> None:
        with world.rt.sessions.begin() as session:
            found = session.get(Event, event["id"])
            assert found is not None
            announcements.announce(session, found, world.organizer_id, "Note", "Text", ["confirmed"], at)

    for hours in (0, 1, 2):
        send(start + timedelta(hours=hours))
    with pytest.raises(announcements.TooManyAnnouncements) as refused:
        send(start + timedelta(hours=23))
    assert refused.value.retry_after_seconds == 3600  # the first leaves the window at 09:00 next day
    send(start + timedelta(hours=24, seconds=1))
    with pytest.raises(announcements.TooManyAnnouncements):
        send(start + timedelta(hours=24, minutes=30))
    assert len(world.notifications(kind="announcement")) == 4


def test_an_announcement_by_sms_waits_for_the_end_of_quiet_hours(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    key = organizer_key(world, world.organizer_id)
    night = (utcnow() + timedelta(days=2)).replace(hour=22, minute=0, second=0, microsecond=0)  # 23:00 in London
    morning = night.replace(hour=7) + timedelta(days=1)  # 08:00 in London (summer) or 07:00 (winter)
    event = world.publish(starts_at=night + timedelta(days=3))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    assert announce(client, key, event["id"], to=["confirmed"]).status_code == 202

    world.run_sender(night)
    [notification] = world.notifications(kind="announcement")
    assert notification.status == "pending" and night < notification.scheduled_for <= morning + timedelta(hours=1)
    assert [s for s in sms_sent(tmp_path) if "room 2" in s["body"]] == []


def test_an_announcement_by_sms_goes_in_quiet_hours_when_the_event_starts_before_they_end(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    key = organizer_key(world, world.organizer_id)
    night = (utcnow() + timedelta(days=2)).replace(hour=22, minute=0, second=0, microsecond=0)
    event = world.publish(starts_at=night + timedelta(hours=7))  # early next morning, before quiet hours end
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    assert announce(client, key, event["id"], to=["confirmed"]).status_code == 202

    world.run_sender(night)
    assert world.kinds(world.notifications(kind="announcement")) == [("announcement", "sms", "sent")]
    [sms] = [s for s in sms_sent(tmp_path) if "room 2" in s["body"]]
    assert sms["to"] == PHONE


def test_announcements_made_at_once_never_pass_the_limit(world: World) -> None:
    event = world.publish()
    world.register(consent_reminders=False)
    attempts = 3 * announcements.MAX_PER_DAY
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def send(n: int) -> None:
        start.wait()
        try:
            with world.rt.sessions.begin() as session:
                found = session.get(Event, event["id"])
                assert found is not None
                announcements.announce(session, found, world.organizer_id, f"Note {n}", "Text", ["confirmed"], utcnow())
            outcomes.append("sent")
        except announcements.TooManyAnnouncements:
            outcomes.append("refused")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (
        sorted(outcomes) == ["refused"] * (attempts - announcements.MAX_PER_DAY) + ["sent"] * announcements.MAX_PER_DAY
    )
    assert len(world.notifications(kind="announcement")) == announcements.MAX_PER_DAY
