"""What the contract says every service serves: health, readiness, its OpenAPI document with every path
of the contract, and the interactive docs."""

import re
from pathlib import Path

import pytest

from gather_shared.testing import API_SERVICES, create_app

CONTRACT_PATHS = {
    "events": {
        ("post", "/v1/organizers"),
        ("post", "/v1/organizers/{organizer_id}/revoke"),
        ("post", "/v1/events"),
        ("patch", "/v1/events/{event_id}"),
        ("post", "/v1/events/{event_id}/publish"),
        ("post", "/v1/events/{event_id}/postpone"),
        ("post", "/v1/events/{event_id}/cancel"),
        ("get", "/v1/events/{event_id}"),
        ("get", "/v1/events"),
        ("get", "/v1/events/{event_id}/calendar.ics"),
        ("get", "/v1/calendar.ics"),
    },
    "signup": {
        ("post", "/v1/events/{event_id}/signups"),
        ("post", "/v1/verifications/{token}"),
        ("get", "/v1/signups/{signup_id}"),
        ("patch", "/v1/signups/{signup_id}"),
        ("delete", "/v1/signups/{signup_id}"),
        ("get", "/v1/events/{event_id}/availability"),
        ("get", "/v1/events/{event_id}/signups"),
        ("delete", "/v1/events/{event_id}/signups/{signup_id}"),
    },
    "notifications": {
        ("get", "/v1/notifications"),
        ("get", "/v1/unsubscribe/{token}"),
        ("post", "/v1/unsubscribe/{token}"),
        ("post", "/v1/sms/inbound"),
        ("post", "/v1/sms/status"),
    },
}


@pytest.mark.parametrize("service", API_SERVICES)
def test_each_service_serves_health_readiness_its_contract_in_openapi_and_docs(
    service: str, service_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{service_env}/{service}.db")
    client = create_app(service).test_client()

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").get_json()
    served = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert CONTRACT_PATHS[service] <= served


def test_the_verification_link_documents_its_expired_and_unknown_answers(
    service_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{service_env}/signup.db")
    spec = create_app("signup").test_client().get("/openapi.json").get_json()

    answers = spec["paths"]["/v1/verifications/{token}"]["post"]["responses"]
    assert {"200", "404", "410"} <= set(answers)


@pytest.mark.parametrize("service", API_SERVICES)
def test_every_call_that_wants_a_key_says_so_in_its_openapi_operation(
    service: str, service_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called without a token, each operation that answers 401 documents the bearer scheme and its 401, and
    each that documents the bearer scheme does answer 401: the docs an organizer's tool reads stay true."""
    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{service_env}/{service}.db")
    client = create_app(service).test_client()
    spec = client.get("/openapi.json").get_json()
    unknown_id = "00000000-0000-4000-8000-000000000000"
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # shared by the path's operations, not one
                continue
            url = re.sub(r"\{[a-z_]+\}", unknown_id, path)
            answer = client.open(url, method=method.upper(), json={})
            documents_bearer = operation.get("security") == [{"bearer": []}]
            if answer.status_code == 401 or documents_bearer:
                checked += 1
                assert answer.status_code == 401 and documents_bearer, (method, path, answer.status_code)
                assert "401" in operation["responses"], (method, path)
    assert checked


def test_a_method_http_does_not_define_is_counted_as_other_never_as_a_series_of_its_own(
    service_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may send any method; each label would be one more series (a file per worker under gunicorn's
    multiprocess directory), so a flood of invented ones must not add series."""
    from gather_shared import metrics

    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{service_env}/events.db")
    client = create_app("events").test_client()
    invented = [f"ZZ{n:04d}" for n in range(50)]
    for method in invented:
        assert client.open("/v1/events", method=method).status_code == 405
    counted = {sample.labels["method"] for family in metrics.REQUEST_SECONDS.collect() for sample in family.samples}
    assert "OTHER" in counted
    assert not counted & set(invented)
