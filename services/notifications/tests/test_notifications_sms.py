"""SMS: length in segments, quiet hours on the recipient's clock (also when clocks change), and the
Twilio provider against a local fake of its API that sends delivery receipts and replies back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from gather_notifications import rules
from gather_notifications.app import create_app
from gather_shared import tokens
from gather_shared.db import utcnow
from gather_shared.testing import SECRET_KEY, free_port

if TYPE_CHECKING:
    from conftest import World

PHONE = "+447700900123"


def sms_sent(workdir: Path) -> list[dict[str, str]]:
    path = workdir / "var/outbox/sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- length -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 160, 1),  # in the GSM-7 alphabet
        ("€" * 80, 1),
        ("€" * 81, 2),  # GSM-7 extension: two septets each
        ("ł" * 70, 1),
        ("ł" * 71, 2),
        ("ł" * 134, 2),
        ("ł" * 135, 3),  # not GSM-7: UCS-2
        ("🙂" * 35, 1),
        ("🙂" * 36, 2),  # beyond the BMP: two UTF-16 units each
    ],
)
def test_sms_segments_are_counted_as_phones_count_them(text: str, segments: int) -> None:
    assert rules.sms_segments(text) == segments


@pytest.mark.parametrize(
    ("title", "kept"), [("Long " * 100, "Long Long"), ("Łódź wellbeing café 🙂 " * 20, "Lodz wellbeing café")]
)
def test_a_long_title_is_shortened_so_the_sms_fits_two_segments_and_ends_with_its_whole_manage_link(
    world: World, tmp_path: Path, title: str, kept: str
) -> None:
    world.publish(title=title)
    registration = world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)

    [sms] = sms_sent(tmp_path)
    assert sms["to"] == PHONE
    assert rules.sms_segments(sms["body"]) <= 2
    # The link is signed as the SMS is sent; no short link, no code kept anywhere.
    assert sms["body"].endswith(
        tokens.manage_url(world.rt.settings.public_url, SECRET_KEY, registration["signup_id"], 1)
    )
    # A title outside GSM-7 would leave no room for the link in UCS-2: its GSM-7 look-alike is sent.
    assert kept in sms["body"]


def test_the_short_links_are_gone(client: FlaskClient) -> None:
    assert client.get("/s/anything").status_code == 404


# --- quiet hours ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evening", "quiet_end"),
    [
        # 22:00 GMT the night clocks go forward: 08:00 BST is 07:00 UTC, nine hours later, not ten.
        (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
        # 22:00 BST the night clocks go back: 08:00 GMT is 08:00 UTC, eleven hours later.
        (datetime(2026, 10, 24, 21, 0, tzinfo=UTC), datetime(2026, 10, 25, 8, 0, tzinfo=UTC)),
    ],
)
def test_an_sms_in_quiet_hours_waits_until_eight_on_the_recipients_clock_even_when_clocks_change(
    world: World, tmp_path: Path, evening: datetime, quiet_end: datetime
) -> None:
    world.publish(starts_at=evening + timedelta(days=5))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False, at=evening)
    world.run_sender(evening)
    [notification] = world.notifications()
    assert (notification.status, notification.scheduled_for) == ("pending", quiet_end)

    world.run_sender(quiet_end - timedelta(seconds=1))
    assert sms_sent(tmp_path) == []
    world.run_sender(quiet_end)
    assert len(sms_sent(tmp_path)) == 1
    assert world.kinds(world.notifications()) == [("signup_confirmed", "sms", "sent")]


def test_quiet_hours_follow_the_recipients_time_zone(world: World, tmp_path: Path) -> None:
    world.publish()
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False, timezone="Asia/Tokyo")
    world.run_sender(world.now)  # 12:00 in London is 21:00 in Tokyo
    [notification] = world.notifications()
    assert notification.scheduled_for == datetime(2026, 6, 10, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo


def test_a_routine_sms_whose_quiet_hours_outlast_the_event_is_suppressed(world: World, tmp_path: Path) -> None:
    late = datetime(2026, 6, 10, 22, 0, tzinfo=UTC)  # 23:00 in London
    world.publish(starts_at=late + timedelta(hours=7, minutes=30))  # 06:30 next morning
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False, at=late)
    world.run_sender(late)
    assert [(n.status, n.last_error) for n in world.notifications()] == [
        ("suppressed", "quiet hours: they last past the event's start")
    ]
    assert sms_sent(tmp_path) == []


def test_news_of_a_cancellation_goes_at_night_when_the_event_starts_before_morning(
    world: World, tmp_path: Path
) -> None:
    late = datetime(2026, 6, 10, 22, 0, tzinfo=UTC)
    world.publish(starts_at=late + timedelta(hours=7, minutes=30))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False, at=late - timedelta(hours=6))
    world.run_sender(late - timedelta(hours=6))
    world.change_status("cancelled", at=late)
    world.run_sender(late)
    assert world.kinds(world.notifications()) == [
        ("signup_confirmed", "sms", "sent"),
        ("event_cancelled", "sms", "sent"),
    ]


# --- the Twilio provider ----------------------------------------------------------------------------

ACCOUNT, TOKEN, FROM = "AC0123456789", "twilio-auth-token", "+15005550006"


def twilio_signature(url: str, params: dict[str, str]) -> str:
    """How Twilio signs its webhooks (written out here, independently of the service's check)."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def serve(app: Flask) -> tuple[str, Any]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


class FakeTwilio:
    """The Messages API, as far as Gather uses it; answers each request with the next of `responses`
    (default: accepted), and plays the part of the network: delivery receipts and replies."""

    def __init__(self, notifications_url: str) -> None:
        self.notifications_url = notifications_url
        self.requests: list[dict[str, Any]] = []
        self.responses: list[tuple[int, dict[str, Any]]] = []
        app = Flask("fake_twilio")
        app.add_url_rule(
            "/2010-04-01/Accounts/<account>/Messages.json", view_func=self.create_message, methods=["POST"]
        )
        self.url, self.server = serve(app)

    def create_message(self, account: str) -> Any:
        auth = request.authorization
        self.requests.append(
            {
                "account": account,
                "auth": (auth.username, auth.password) if auth else None,
                "form": request.form.to_dict(),
            }
        )
        status, body = self.responses.pop(0) if self.responses else (201, {"sid": f"SM{uuid.uuid4().hex}"})
        if status == 201:
            body = body | {"status": "queued", "to": request.form["To"]}
        self.requests[-1]["answer"] = body
        return jsonify(body), status

    def report(self, status: str, **extra: str) -> requests.Response:
        """Send the delivery receipt for the last message to its StatusCallback."""
        [message] = self.requests[-1:]
        params = {"MessageSid": "SMunknown", "MessageStatus": status, "To": message["form"]["To"]} | extra
        return self._post(message["form"]["StatusCallback"], params)

    def reply(self, number: str, text: str) -> requests.Response:
        params = {"From": number, "To": FROM, "Body": text, "MessageSid": f"SM{uuid.uuid4().hex}"}
        return self._post(f"{self.notifications_url}/v1/sms/inbound", params)

    def _post(self, url: str, params: dict[str, str]) -> requests.Response:
        return requests.post(
            url, data=params, headers={"X-Twilio-Signature": twilio_signature(url, params)}, timeout=10
        )


@pytest.fixture
def twilio(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The notifications service's web app served on 127.0.0.1, a fake Twilio, and the sender using it."""
    port = free_port()
    notifications_url = f"http://127.0.0.1:{port}"
    settings = {
        "GATHER_NOTIFICATIONS_URL": notifications_url,
        "GATHER_SMS_PROVIDER": "twilio",
        "GATHER_SMS_ACCOUNT_SID": ACCOUNT,
        "GATHER_SMS_AUTH_TOKEN": TOKEN,
        "GATHER_SMS_FROM": FROM,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    app_server = make_server("127.0.0.1", port, create_app(), threaded=True)
    threading.Thread(target=app_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake = FakeTwilio(notifications_url)
    world.configure(
        notifications_url=notifications_url,
        sms_provider="twilio",
        sms_base_url=fake.url,
        sms_account_sid=ACCOUNT,
        sms_auth_token=TOKEN,
        sms_from=FROM,
    )
    yield fake
    fake.server.shutdown()
    app_server.shutdown()


def test_an_sms_goes_through_the_twilio_api_and_its_receipt_marks_it_delivered(
    world: World, twilio: FakeTwilio
) -> None:
    world.publish()
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)

    [sent] = twilio.requests
    assert sent["account"] == ACCOUNT and sent["auth"] == (ACCOUNT, TOKEN)
    assert (sent["form"]["To"], sent["form"]["From"]) == (PHONE, FROM)
    assert "Peer support circle" in sent["form"]["Body"]
    assert sent["form"]["StatusCallback"].startswith(f"{twilio.notifications_url}/v1/sms/status")
    assert world.kinds(world.notifications()) == [("signup_confirmed", "sms", "sent")]

    assert twilio.report("sent").status_code == 204
    assert world.kinds(world.notifications()) == [("signup_confirmed", "sms", "sent")]
    assert twilio.report("delivered").status_code == 204
    assert world.kinds(world.notifications()) == [("signup_confirmed", "sms", "delivered")]


def test_a_receipt_that_names_only_the_providers_message_id_settles_its_sms(world: World, twilio: FakeTwilio) -> None:
    world.publish()
    signups = {
        number: world.register(phone=number, channels=["sms"], consent_reminders=False)["signup_id"]
        for number in (PHONE, "+447700900124")
    }
    world.run_sender(world.now)
    [to_second] = [sent for sent in twilio.requests if sent["form"]["To"] == "+447700900124"]
    url = f"{twilio.notifications_url}/v1/sms/status"  # no ?notification=: only the provider's id says which
    params = {"MessageSid": to_second["answer"]["sid"], "MessageStatus": "delivered", "To": "+447700900124"}
    response = requests.post(
        url, data=params, headers={"X-Twilio-Signature": twilio_signature(url, params)}, timeout=10
    )
    assert response.status_code == 204
    assert {n.signup_id: n.status for n in world.notifications()} == {
        signups[PHONE]: "sent",
        signups["+447700900124"]: "delivered",
    }


def test_an_undelivered_receipt_is_recorded_with_the_providers_error(world: World, twilio: FakeTwilio) -> None:
    world.publish()
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)
    twilio.report("undelivered", ErrorCode="30003")
    [notification] = world.notifications()
    assert (notification.status, notification.last_error) == ("undelivered", "provider error 30003")


def test_a_stop_reply_stops_every_sms_to_that_number_until_start(world: World, twilio: FakeTwilio) -> None:
    world.publish()
    assert twilio.reply(PHONE, "Stop ").status_code == 200
    first = world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)
    assert [(n.status, n.last_error) for n in world.notifications(signup_id=first["signup_id"])] == [
        ("suppressed", "opted out: the number replied STOP")
    ]
    assert twilio.requests == []

    assert twilio.reply(PHONE, "START").status_code == 200
    second = world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)
    assert world.kinds(world.notifications(signup_id=second["signup_id"])) == [("signup_confirmed", "sms", "sent")]
    assert len(twilio.requests) == 1


def test_twilio_rate_limiting_is_retried_and_a_refusal_fails_at_once(world: World, twilio: FakeTwilio) -> None:
    world.publish()
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    twilio.responses = [
        (429, {"code": 20429, "message": "Too Many Requests"}),
        (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}),
    ]
    world.run_sender(world.now)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "429" in notification.last_error

    world.run_sender(notification.scheduled_for)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts) == ("failed", 2)
    assert "21211" in notification.last_error


def test_an_unreachable_sms_provider_is_retried(world: World, twilio: FakeTwilio) -> None:
    world.configure(sms_base_url=f"http://127.0.0.1:{free_port()}")
    world.publish()
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    world.run_sender(world.now)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert notification.last_error.startswith("twilio: ")
    assert notification.scheduled_for > world.now


def test_webhooks_not_signed_by_the_provider_are_refused(world: World, twilio: FakeTwilio) -> None:
    url = f"{twilio.notifications_url}/v1/sms/inbound"
    forged = requests.post(
        url, data={"From": PHONE, "Body": "STOP"}, headers={"X-Twilio-Signature": "forged"}, timeout=10
    )
    assert forged.status_code == 403
    assert forged.headers["Content-Type"] == "application/problem+json"
    missing = requests.post(
        f"{twilio.notifications_url}/v1/sms/status",
        data={"MessageSid": "SM1", "MessageStatus": "delivered"},
        timeout=10,
    )
    assert missing.status_code == 403


def test_a_webhook_without_its_fields_is_a_422_naming_them(world: World, twilio: FakeTwilio) -> None:
    response = twilio._post(f"{twilio.notifications_url}/v1/sms/inbound", {"Body": "STOP"})  # signed
    assert response.status_code == 422
    assert "From" in response.json()["errors"]


# --- replies that make sense to a person ------------------------------------------------------------


def texted_back(response: requests.Response) -> str | None:
    """The text a TwiML answer sends back, if any."""
    import xml.etree.ElementTree as ET

    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    message = ET.fromstring(response.content).find("Message")
    return None if message is None else message.text


def test_cancel_opts_out_and_says_the_place_is_kept_and_how_to_cancel_it(world: World, twilio: FakeTwilio) -> None:
    event = world.publish(starts_at=utcnow() + timedelta(days=7))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)

    answer = texted_back(twilio.reply(PHONE, " cancel "))
    assert answer is not None
    assert "no more texts" in answer
    assert "Your place at Peer support circle is kept: to cancel it" in answer
    assert f"{world.rt.settings.public_url}/events/{event['id']}" in answer
    assert "/manage/" not in answer  # never the private link, to whoever holds the phone
    world.run_sender(world.now)
    assert [n.status for n in world.notifications(channel="sms")] == ["suppressed"]  # opted out, as STOP does


def test_help_names_the_organizer_and_the_events_page_without_a_token(world: World, twilio: FakeTwilio) -> None:
    event = world.publish(starts_at=utcnow() + timedelta(days=7), organizer_name="Leeds Peer Support")
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)

    answer = texted_back(twilio.reply(PHONE, "HELP"))
    assert answer is not None
    assert "Peer support circle, run by Leeds Peer Support" in answer
    assert answer.count("http") == 1 and f"/events/{event['id']} " in answer
    assert "/manage/" not in answer
    world.run_sender(world.now)
    assert [n.status for n in world.notifications(channel="sms")] == ["sent"]  # HELP opts nobody out


def test_help_from_a_number_with_no_registration_names_no_event(world: World, twilio: FakeTwilio) -> None:
    world.publish(starts_at=utcnow() + timedelta(days=7))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    answer = texted_back(twilio.reply("+447700900999", "help"))
    assert answer == "Gather: texts about events you registered for. Reply STOP to stop them, START to get them again."
    assert texted_back(twilio.reply("+447700900999", "CANCEL")) == (
        "Gather: you will get no more texts from us. Reply START to get them again."
    )


def test_stop_and_other_words_are_not_answered(world: World, twilio: FakeTwilio) -> None:
    world.publish(starts_at=utcnow() + timedelta(days=7))
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    assert texted_back(twilio.reply(PHONE, "STOP")) is None
    assert texted_back(twilio.reply(PHONE, "thanks <3 & see you")) is None


def test_help_answers_in_the_events_language(world: World, twilio: FakeTwilio) -> None:
    world.publish(starts_at=utcnow() + timedelta(days=7), language="es")
    world.register(phone=PHONE, channels=["sms"], consent_reminders=False)
    answer = texted_back(twilio.reply(PHONE, "HELP"))
    assert answer is not None and answer.startswith("Gather: mensajes sobre Peer support circle")
