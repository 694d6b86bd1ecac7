"""One registration can be followed through every process's log by the id of the HTTP request (on the platform
the cross-service tests share: each request id here is this module's own)."""

import json
import re

import pytest

from gather_shared.testing import Client, ExchangeSpy, Platform, unique_email, wait_for

#: These tests count registrations taken at once (201): an event that asks no verification of contacts.
AT_ONCE = {"kind": "workshop", "verification": "none"}


@pytest.mark.parametrize("platform", ["embedded"], indirect=True)
def test_every_log_line_of_a_messages_journey_carries_the_request_id_and_the_message_id(platform: Platform) -> None:
    client = Client(platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    wait_for(lambda: client.register(event["id"], email=unique_email("warmup")).status_code == 201)

    response = client.register(event["id"], headers={"X-Request-ID": "journey-42"})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "journey-42"
    wait_for(lambda: len([n for n in client.notifications(event_id=event["id"]) if n["status"] == "sent"]) == 2)

    def journey(process: str) -> list[str]:
        return [line for line in platform.tail(process, 400).splitlines() if "cid=journey-42" in line]

    relayed, handled, sent = journey("signup-relay"), journey("notifications-consumer"), journey("notifications-sender")
    assert relayed and handled and sent

    def message_ids(lines: list[str]) -> set[str]:
        return {re.search(r"mid=(\S+)\]", line).group(1) for line in lines}  # type: ignore[union-attr]

    # The request sends two messages: the registration, and the event's new seat counts (for the attendee
    # pages). Every line names its message; the email comes of one message the consumer handled.
    relayed_ids, handled_ids, sent_ids = message_ids(relayed), message_ids(handled), message_ids(sent)
    assert "-" not in relayed_ids | handled_ids | sent_ids
    assert len(sent_ids) == 1 and sent_ids <= handled_ids


@pytest.mark.parametrize("platform", ["real"], indirect=True)
def test_a_requests_w3c_trace_goes_on_in_every_message_it_causes_and_every_log_line(
    platform: Platform, exchange_spy: ExchangeSpy
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    client = Client(platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)

    response = client.register(event["id"], headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == trace
    wait_for(lambda: [n for n in client.notifications(event_id=event["id"]) if n["status"] == "sent"])

    assert f"rid={trace}" in platform.tail("signup", 400)  # the access log
    for process in ("signup-relay", "notifications-consumer", "notifications-sender"):
        assert f"cid={trace}" in platform.tail(process, 400), process
    # The registration caused two messages: each carries the trace on, in a span of its own.
    traced = {
        json.loads(copy.body)["type"]: copy.headers["traceparent"]
        for copy in exchange_spy.copies()
        if trace in copy.headers.get("traceparent", "")
    }
    assert set(traced) == {"signup.confirmed.v1", "signup.availability_changed.v1"}
    assert all(re.fullmatch(rf"00-{trace}-[0-9a-f]{{16}}-01", parent) for parent in traced.values()), traced
    assert len(set(traced.values())) == 2
