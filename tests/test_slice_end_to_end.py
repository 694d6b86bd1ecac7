"""The thin slice across separate processes: HTTP in, email out."""

from email import policy
from email.parser import BytesParser

from gather_shared.testing import Client, Platform, unique_email, wait_for


def test_a_registration_reaches_the_attendee_as_an_email(platform: Platform) -> None:
    client = Client(platform)
    robin = unique_email("robin")
    organizer = client.organizer()
    event = client.published_event(organizer["api_key"], title="Grief support evening")

    # The group verifies its attendees' contact: the link goes by email, and following it takes the place.
    response = client.register_verified(event["id"], display_name="Robin", email=robin)
    assert response.status_code == 200, response.text
    signup = response.json()
    assert signup["status"] == "confirmed"

    sent = wait_for(
        lambda: (
            len(done := [n for n in client.notifications(signup_id=signup["id"]) if n["status"] == "sent"]) == 2
            and done
        ),
        message="the confirmation to be sent",
    )
    assert [(n["kind"], n["channel"]) for n in sent] == [("verify_contact", "email"), ("signup_confirmed", "email")]

    mails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (platform.workdir / "var/outbox/email").glob("*.eml")
    ]
    [mail] = [m for m in mails if m["To"] == robin and m["Subject"].startswith("You're registered")]
    assert "Grief support evening" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert "Robin" in text
    assert f"/manage/{signup['id']}/{signup['manage_token']}" in text
