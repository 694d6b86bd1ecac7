"""The organizer removes an attendee, across the running services: the attendee is told kindly, with the
reason, and the longest-waiting gets the seat and hears of it."""

from __future__ import annotations

from gather_shared.testing import Client, Platform, messages_to, unique_email, wait_for

REASON = "This circle is for carers, and we would love to see you at the Thursday group instead."


def test_a_removed_attendee_is_told_kindly_with_the_reason_and_the_waitlist_gets_the_seat(platform: Platform) -> None:
    client = Client(platform)
    robin, sam = unique_email("robin"), unique_email("sam")
    key = client.organizer()["api_key"]
    event = client.published_event(key, capacity=1, kind="workshop", verification="none")
    seated = client.register(event["id"], email=robin).json()
    waiting = client.register(event["id"], email=sam).json()
    assert (seated["status"], waiting["status"]) == ("confirmed", "waitlisted")

    removed = client.call(
        "DELETE", "signup", f"/v1/events/{event['id']}/signups/{seated['id']}", key, json={"reason": REASON}
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["promoted"] == [waiting["id"]]

    def kinds(signup_id: str) -> set[tuple[str, str]]:
        return {(n["kind"], n["status"]) for n in client.notifications(signup_id=signup_id)}

    wait_for(lambda: ("signup_removed", "sent") in kinds(seated["id"]), message="the removal notice")
    wait_for(lambda: ("promoted", "sent") in kinds(waiting["id"]), message="the promotion notice")
    [notice] = [text for text in messages_to(platform.workdir, robin) if REASON in text]
    assert "sorry" in notice
    assert "no longer have a place" in notice
    assert sam not in notice
    assert not any(REASON in text for text in messages_to(platform.workdir, sam))
