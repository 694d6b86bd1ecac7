"""The message contract: envelope, schemas, topology."""

import json
import uuid

import pytest
from marshmallow import ValidationError

from gather_shared import envelope, messages
from gather_shared.bus import topology


def organizer_data() -> dict:
    return {"organizer_id": str(uuid.uuid4()), "name": "Mind Matters", "api_key_hash": "f" * 64}


def test_an_envelope_is_cloudevents_1_0_with_the_type_as_routing_key() -> None:
    body = envelope.build("organizer.key_issued.v1", "/gather/events", organizer_data(), "req-1")
    assert {"specversion", "id", "source", "type", "time", "datacontenttype", "data"} <= set(body)
    assert body["specversion"] == "1.0"
    parsed = envelope.parse(json.dumps(body))
    assert parsed["correlationid"] == "req-1"
    assert parsed["data"]["organizer_id"] == uuid.UUID(body["data"]["organizer_id"])


def test_unknown_fields_are_ignored_so_producers_can_add_fields() -> None:
    body = envelope.build("organizer.key_issued.v1", "/gather/events", organizer_data() | {"new": 1}, None)
    body["newattribute"] = "x"
    assert "new" not in envelope.parse(json.dumps(body))["data"]


@pytest.mark.parametrize(
    "body, complaint",
    [
        ("{not json", "not JSON"),
        ("[" * 200_000, "not JSON"),  # nested deeper than any parser's recursion: dead-lettered, not a crash
        ("[]", "JSON object"),
        (json.dumps({"specversion": "1.0"}), "type"),
    ],
)
def test_a_body_that_is_not_a_gather_message_is_rejected(body: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as error:
        envelope.parse(body)
    assert complaint in json.dumps(error.value.messages)


def test_data_that_fails_its_schema_is_rejected_naming_the_field() -> None:
    body = envelope.build("organizer.key_issued.v1", "/gather/events", organizer_data() | {"api_key_hash": "x"}, None)
    with pytest.raises(ValidationError) as error:
        envelope.parse(json.dumps(body))
    assert "api_key_hash" in error.value.messages


def test_a_service_cannot_emit_data_its_consumers_would_reject() -> None:
    with pytest.raises(ValidationError):
        messages.dump("signup.erased.v1", {"signup_id": "nope"})


def test_every_message_type_is_consumed_by_some_queue() -> None:
    def bound(type_: str, pattern: str) -> bool:
        prefix = pattern.removesuffix("#")
        return type_ == pattern or (pattern.endswith("#") and type_.startswith(prefix))

    for type_ in messages.SCHEMAS:
        assert any(bound(type_, p) for q in topology.CONSUMERS.values() for p in q.bindings), type_


def test_every_consumer_queue_has_a_dead_letter_queue_and_one_delay_queue_per_retry() -> None:
    for q in topology.CONSUMERS.values():
        assert q.dlq == f"{q.name}.dlq"
        assert len({q.retry_queue(d) for d in topology.RETRY_DELAYS_SECONDS}) == len(topology.RETRY_DELAYS_SECONDS)


def test_every_message_type_has_one_service_that_may_send_it() -> None:
    services = {f"/gather/{service}" for service in ("events", "signup", "notifications")}
    for type_ in messages.SCHEMAS:
        assert topology.sender(type_) in services, type_
