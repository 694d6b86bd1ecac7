"""The thin slice across separate processes: HTTP in, email out."""

from email import policy
from email.parser import BytesParser

from gather_shared.testing import Client, Platform, wait_for


def test_a_registration_reaches_the_attendee_as_an_email(platform: Platform) -> None:
    client = Client(platform)
    organizer = client.organizer()
    event = client.published_event(organizer["api_key"], title="Grief support evening")

    response = client.register(event["id"], display_name="Robin", email="robin@example.org")
    assert response.status_code == 201, response.text
    signup = response.json()
    assert signup["status"] == "confirmed"

    sent = wait_for(
        lambda: [n for n in client.notifications(signup_id=signup["id"]) if n["status"] == "sent"],
        message="the confirmation to be sent",
    )
    assert [(n["kind"], n["channel"]) for n in sent] == [("signup_confirmed", "email")]

    emails = list((platform.workdir / "var/outbox/email").glob("*.eml"))
    assert len(emails) == 1
    mail = BytesParser(policy=policy.default).parsebytes(emails[0].read_bytes())
    assert mail["To"] == "robin@example.org"
    assert "Grief support evening" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "Robin" in text
    assert f"/v1/signups/{signup['id']}" in text
