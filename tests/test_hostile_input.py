"""Hostile input, sent to each API as an attacker would (HTTP against the app, on SQLite and PostgreSQL):
always a 4xx problem, never a 500. Non-ASCII bearer tokens, line breaks in one-line fields, deeply nested
JSON on every JSON endpoint, forged cursors on every listing, recurrence rules no date matches, HEAD on an
unsubscribe link, unsigned SMS webhooks; and what every answer and page carries (no-store, security
headers, /docs from our own origin)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from gather_events.store import Organizer
from gather_events.store import metadata as events_metadata
from gather_notifications.api import provider_signature
from gather_notifications.handlers import handlers as notifications_handlers
from gather_notifications.store import EmailOptOut
from gather_notifications.store import metadata as notifications_metadata
from gather_shared import testing, tokens, web
from gather_shared.testing import ADMIN_TOKEN, deliver
from gather_signup.handlers import handlers as signup_handlers
from gather_signup.store import metadata as signup_metadata

ORGANIZER_KEY = "organizer-key-0123456789abcdef"
SMS_AUTH_TOKEN = "twilio-auth-token"
NOTIFICATIONS_URL = "https://notifications.gather.example"
METADATA: dict[str, sa.MetaData] = {
    "events": events_metadata,
    "signup": signup_metadata,
    "notifications": notifications_metadata,
}
#: Every way to break a line or hide a control character in text meant for one line.
NOT_ONE_LINE = [
    "\r",
    "\n",
    "\r\n",
    "\v",
    "\f",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
    "\t",
    "\x07",
    "\x9b",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def apps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Flask]]:
    """Each API's app on a database of its own (SQLite, then PostgreSQL), the SMS provider being Twilio."""
    env = {
        "GATHER_SMS_PROVIDER": "twilio",
        "GATHER_SMS_AUTH_TOKEN": SMS_AUTH_TOKEN,
        "GATHER_SMS_ACCOUNT_SID": "AC0123",
        "GATHER_SMS_FROM": "+15550000000",
        "GATHER_NOTIFICATIONS_URL": NOTIFICATIONS_URL,
    }
    built: dict[str, Flask] = {}
    with contextlib.ExitStack() as stack:
        for service in testing.API_SERVICES:
            stack.enter_context(testing.module_service(request, tmp_path_factory, service, **env))
            built[service] = testing.create_app(service)  # reads the settings module_service just set
        yield built
        for app in built.values():
            app.extensions["gather_runtime"].engine.dispose()


@pytest.fixture(params=testing.API_SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return request.param


def fresh(apps: dict[str, Flask], service: str) -> FlaskClient:
    """The service's app on empty tables, knowing ORGANIZER_KEY (and, for events, its organizer)."""
    app = apps[service]
    rt = app.extensions["gather_runtime"]
    testing.empty_tables(rt.engine, METADATA[service])
    if service == "events":
        with rt.sessions.begin() as session:
            session.add(
                Organizer(
                    id=uuid.UUID(int=1),
                    name="Mind Matters",
                    email="o@example.org",
                    api_key_hash=web.hash_secret(ORGANIZER_KEY),
                )
            )
    else:
        table = (signup_handlers if service == "signup" else notifications_handlers)(rt.settings)
        key = {"organizer_id": uuid.UUID(int=1), "name": "Mind Matters", "api_key_hash": web.hash_secret(ORGANIZER_KEY)}
        deliver(rt.sessions, table, "organizer.key_issued.v1", key)
    return app.test_client()


def publish(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    """Tell signup or notifications of a published event of the organizer."""
    rt = client.application.extensions["gather_runtime"]
    service = rt.settings.service
    table = (signup_handlers if service == "signup" else notifications_handlers)(rt.settings)
    snapshot = testing.event_snapshot(**({"kind": "workshop", "verification": "none"} | overrides))
    deliver(rt.sessions, table, "event.published.v1", {"event": snapshot})
    return snapshot


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    return response.get_json()


# --- bearer tokens ------------------------------------------------------------------------------------

#: What a header can carry that no key has: Latin-1 letters, and UTF-8 bytes read as Latin-1 (as a server
#: reads a header sent in UTF-8), a line separator, a bell.
FOREIGN_TOKENS = ["clé-secrète", "ключ".encode().decode("latin-1"), "gok_\x85abc", "gok_\u00a0abc", "gok_\x07"]


def authorised_calls(client: FlaskClient, service: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Calls that need a bearer token, one of each kind of token each service knows."""
    if service == "events":
        return [
            ("GET", "/v1/organizers/me", {}),
            ("POST", "/v1/organizers", {"json": {"name": "A", "email": "a@example.org"}}),
            ("POST", f"/v1/organizers/{uuid.UUID(int=1)}/revoke", {}),
            ("POST", "/v1/events", {"json": testing.event_body()}),
        ]
    if service == "signup":
        event = publish(client)
        return [
            ("GET", f"/v1/events/{event['id']}/signups", {}),
            ("GET", f"/v1/signups/{uuid.uuid4()}", {}),
            ("DELETE", f"/v1/signups/{uuid.uuid4()}", {}),
        ]
    return [("GET", "/v1/notifications", {})]


def test_a_bearer_token_with_non_ascii_characters_is_a_401_never_a_500(apps: dict[str, Flask], service: str) -> None:
    client = fresh(apps, service)
    for method, path, kwargs in authorised_calls(client, service):
        for token in FOREIGN_TOKENS:
            response = client.open(path, method=method, headers=bearer(token), **kwargs)
            assert_problem(response, 401)


def test_a_foreign_bearer_token_on_a_public_call_is_no_500(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "events")
    for token in FOREIGN_TOKENS:
        assert client.get("/v1/events", headers=bearer(token)).status_code == 200
        assert_problem(client.get(f"/v1/events/{uuid.uuid4()}", headers=bearer(token)), 404)


# --- one-line fields ----------------------------------------------------------------------------------


def event_with(path: str, value: str) -> dict[str, Any]:
    body = testing.event_body(resources=[{"title": "Samaritans", "url": "https://samaritans.example/"}])
    target: Any = body
    *parents, name = path.split(".")
    for parent in parents:
        target = target[parent][0] if parent == "resources" else target[parent]
    target[name] = value
    return body


ONE_LINE_EVENT_FIELDS = [
    "title",
    "summary",
    "venue.name",
    "venue.address",
    "venue.city",
    "venue.postcode",
    "resources.title",
]


@pytest.mark.parametrize("field", ONE_LINE_EVENT_FIELDS)
def test_an_event_field_of_one_line_refuses_every_line_break_and_control_character(
    apps: dict[str, Flask], field: str
) -> None:
    client = fresh(apps, "events")
    for char in NOT_ONE_LINE:
        response = client.post(
            "/v1/events", json=event_with(field, f"Group{char}Bcc: all@example.org"), headers=bearer(ORGANIZER_KEY)
        )
        errors = assert_problem(response, 422)["errors"]
        assert any(name.split(".")[0] == field.split(".")[0] for name in errors), (char, errors)
    # A description is many lines: line breaks are welcome there.
    ok = client.post(
        "/v1/events", json=testing.event_body(description="Line one.\nLine two."), headers=bearer(ORGANIZER_KEY)
    )
    assert ok.status_code == 201, ok.get_data(as_text=True)


def test_reasons_and_names_are_one_line_too(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "events")
    created = client.post("/v1/events", json=testing.event_body(), headers=bearer(ORGANIZER_KEY))
    event_id = created.get_json()["id"]
    assert client.post(f"/v1/events/{event_id}/publish", headers=bearer(ORGANIZER_KEY)).status_code == 200
    for char in NOT_ONE_LINE:
        for step in ("postpone", "cancel"):
            response = client.post(
                f"/v1/events/{event_id}/{step}", json={"reason": f"Ill{char}ness"}, headers=bearer(ORGANIZER_KEY)
            )
            assert "reason" in assert_problem(response, 422)["errors"]
        response = client.post(
            "/v1/organizers", json={"name": f"Mind{char}Matters", "email": "m@example.org"}, headers=bearer(ADMIN_TOKEN)
        )
        assert "name" in assert_problem(response, 422)["errors"]


def test_a_display_name_is_one_line(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "signup")
    event = publish(client)
    for char in NOT_ONE_LINE:
        body = {"display_name": f"Sam{char}Bcc: all@example.org", "email": "sam@example.org", "channels": ["email"]}
        response = client.post(f"/v1/events/{event['id']}/signups", json=body)
        assert "display_name" in assert_problem(response, 422)["errors"]


# --- deeply nested JSON, on every JSON endpoint -------------------------------------------------------

HOSTILE_BODIES = {
    "nested": "[" * (64 * 1024),  # as deep as the body limit allows: Python's parser gives up (RecursionError)
    "nested objects": '{"a":' * 10_000,
    "a number of 5000 digits": "[" + "9" * 5000 + "]",  # int() refuses it: a ValueError, not a JSONDecodeError
}


def body_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route that takes a body, with its parameters filled in."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            path = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), rule.rule)
            routes.append((method, re.sub(r"<(?:\w+:)?\w+>", "x", path)))
    return routes


@pytest.mark.parametrize("body", sorted(HOSTILE_BODIES))
def test_hostile_json_is_a_422_on_every_json_endpoint(apps: dict[str, Flask], service: str, body: str) -> None:
    client = fresh(apps, service)
    routes = body_routes(client.application)
    assert routes
    for method, path in routes:
        for token in (ADMIN_TOKEN, ORGANIZER_KEY):
            response = client.open(
                path, method=method, data=HOSTILE_BODIES[body], content_type="application/json", headers=bearer(token)
            )
            assert_problem(response, 422)


# --- forged cursors, on every listing -----------------------------------------------------------------


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = {
    "naive time": lambda: b64(["2030-01-01T00:00:00", str(uuid.uuid4())]),
    "year 9999 with an offset": lambda: b64(["9999-12-31T23:30:00-05:00", str(uuid.uuid4())]),
    "year 1 with an offset": lambda: b64(["0001-01-01T00:30:00+05:00", str(uuid.uuid4())]),
    "an integer for an id": lambda: b64(["2030-01-01T00:00:00+00:00", 12345]),
    "an integer for a time": lambda: b64([12345, str(uuid.uuid4())]),
    "beyond 64 bits": lambda: b64([2**70]),
    "beyond 64 bits as a time": lambda: b64([2**70, 2**70]),
    "garbage base64": lambda: "%%%not-base64!!",
    "bytes that are not text": lambda: b64(b"\xff\xfe\xfa"),
    "nested JSON": lambda: b64(b"[" * 1500),
}


def listings(client: FlaskClient, service: str) -> list[tuple[str, str]]:
    """(path, token) of every paged listing of the service."""
    if service == "events":
        return [("/v1/events", ""), ("/v1/organizers/me/events", ORGANIZER_KEY)]
    if service == "signup":
        return [(f"/v1/events/{publish(client)['id']}/signups", ORGANIZER_KEY)]
    return [("/v1/notifications", ADMIN_TOKEN), ("/v1/notifications", ORGANIZER_KEY)]


@pytest.mark.parametrize("cursor", sorted(FORGED_CURSORS))
def test_a_forged_cursor_is_a_422_on_every_listing(apps: dict[str, Flask], service: str, cursor: str) -> None:
    client = fresh(apps, service)
    for path, token in listings(client, service):
        response = client.get(
            path, query_string={"cursor": FORGED_CURSORS[cursor]()}, headers=bearer(token) if token else {}
        )
        assert "cursor" in assert_problem(response, 422)["errors"]


# --- recurrence ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=" + ",".join(str(n) for n in range(1, 31)),
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1,2,3,4,5,6,7",
        "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2",
    ],
)
def test_a_recurrence_rule_no_date_matches_is_a_422(apps: dict[str, Flask], rule: str) -> None:
    client = fresh(apps, "events")
    response = client.post("/v1/events", json=testing.event_body(recurrence=rule), headers=bearer(ORGANIZER_KEY))
    assert "recurrence" in assert_problem(response, 422)["errors"]


# --- unsubscribe: only POST -----------------------------------------------------------------------------


def confirmed_unsubscribe_path(client: FlaskClient) -> str:
    """Robin's confirmation planned in the notifications service, and the unsubscribe link it carries."""
    rt = client.application.extensions["gather_runtime"]
    event = publish(client)
    signup_id = uuid.uuid4()
    registration = {
        "signup_id": signup_id,
        "event_id": event["id"],
        "status": "confirmed",
        "display_name": "Robin",
        "email": "robin@example.org",
        "channels": ["email"],
        "created_at": datetime.now(UTC) - timedelta(minutes=1),
    }
    deliver(rt.sessions, notifications_handlers(rt.settings), "signup.confirmed.v1", registration)
    return f"/v1/unsubscribe/{tokens.unsubscribe_token(rt.settings.secret_key, signup_id)}"


def test_head_on_an_unsubscribe_link_changes_nothing_only_post_does(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "notifications")
    rt = client.application.extensions["gather_runtime"]
    path = confirmed_unsubscribe_path(client)

    def opted_out() -> int:
        with rt.sessions() as session:
            return len(session.scalars(sa.select(EmailOptOut)).all())

    for method in ("HEAD", "GET", "OPTIONS"):
        assert client.open(path, method=method).status_code < 300
        assert opted_out() == 0, method
    assert client.post(path).status_code == 200
    assert opted_out() == 1


@pytest.mark.parametrize("address", ["Ülla@example.org", "İlker@example.org", "ØYSTEIN@example.org"])
def test_a_contact_with_capitals_beyond_ascii_gets_the_same_answer_registered_or_not(
    apps: dict[str, Flask], address: str
) -> None:
    """The attendance oracle stays closed whatever the letters: asking again for a place this contact holds
    is answered exactly as for a contact never seen."""
    client = fresh(apps, "signup")
    event = publish(client, verification="contact")
    path = f"/v1/events/{event['id']}/signups"
    body = {"display_name": "Someone", "channels": ["email"]}
    first = client.post(path, json=body | {"email": address})
    again = client.post(path, json=body | {"email": address})
    never_seen = client.post(path, json=body | {"email": f"other.{address}"})
    for answer in (first, again, never_seen):
        assert answer.status_code == 202, answer.get_data(as_text=True)
        assert sorted(answer.get_json()) == ["expires_at", "status"]
        assert answer.get_json()["status"] == "check_your_messages"


# --- what answers carry ---------------------------------------------------------------------------------


def test_attendee_lists_and_manage_answers_are_never_stored(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "signup")
    event = publish(client)
    registered = client.post(
        f"/v1/events/{event['id']}/signups",
        json={"display_name": "Sam", "email": "sam@example.org", "channels": ["email"]},
    )
    assert registered.status_code == 201 and registered.headers["Cache-Control"] == "no-store"
    signup_id, token = registered.get_json()["id"], registered.get_json()["manage_token"]
    answers = [
        client.get(f"/v1/events/{event['id']}/signups", headers=bearer(ORGANIZER_KEY)),
        client.get(f"/v1/events/{event['id']}/signups", headers=bearer(ORGANIZER_KEY) | {"Accept": "text/csv"}),
        client.get(f"/v1/signups/{signup_id}", headers=bearer(token)),
        client.patch(f"/v1/signups/{signup_id}", json={"display_name": "Sam B"}, headers=bearer(token)),
        client.delete(f"/v1/signups/{signup_id}", headers=bearer(token)),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store"
    assert answers[1].mimetype == "text/csv"


def test_every_answer_that_shows_an_api_key_is_never_stored(apps: dict[str, Flask]) -> None:
    """An API key is shown once, in the answer that issues it: no browser or proxy may keep a copy."""
    client = fresh(apps, "events")
    created = client.post(
        "/v1/organizers", json={"name": "Open Door", "email": "o@example.org"}, headers=bearer(ADMIN_TOKEN)
    )
    organizer_id = created.get_json()["id"]
    rotated = client.post("/v1/organizers/me/keys", headers=bearer(created.get_json()["api_key"]))
    owner = bearer(rotated.get_json()["api_key"])
    added = client.post(
        f"/v1/organizers/{organizer_id}/members", json={"name": "Ana", "role": "facilitator"}, headers=owner
    )
    reissued = client.post(f"/v1/organizers/{organizer_id}/members/{added.get_json()['id']}/keys", headers=owner)
    for answer in (created, rotated, added, reissued):
        assert answer.status_code == 201, answer.get_data(as_text=True)
        assert answer.get_json()["api_key"]
        assert answer.headers["Cache-Control"] == "no-store", answer.request.path
    # The account's own details, and its members' names, are not for a shared cache either.
    for path in ("/v1/organizers/me", f"/v1/organizers/{organizer_id}/members"):
        answer = client.get(path, headers=owner)
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store", path


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(found[name] or "")
        self._in_script = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_docs_load_nothing_from_another_origin_and_pages_send_the_security_headers(
    apps: dict[str, Flask], service: str
) -> None:
    client = fresh(apps, service)
    docs = client.get("/docs")
    assert docs.status_code == 200
    parser = _Assets()
    parser.feed(docs.get_data(as_text=True))
    assert parser.urls and parser.inline_scripts == 0
    for url in parser.urls:
        assert "//" not in url and not url.startswith("/"), url  # relative: this origin, whatever the prefix
        assert client.get(f"/{url}").status_code == 200, url
    csp = docs.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert docs.headers["X-Content-Type-Options"] == "nosniff"
    assert docs.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_the_unsubscribe_page_sends_the_security_headers(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "notifications")
    page = client.get(confirmed_unsubscribe_path(client))
    assert page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"  # reached by a private link
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"


# --- SMS webhooks -----------------------------------------------------------------------------------------


def test_sms_webhooks_refuse_any_call_the_provider_did_not_sign(apps: dict[str, Flask]) -> None:
    client = fresh(apps, "notifications")
    for path, form in [
        ("/v1/sms/inbound", {"From": "+447911123456", "Body": "STOP"}),
        ("/v1/sms/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
    ]:
        signature = provider_signature(SMS_AUTH_TOKEN, NOTIFICATIONS_URL + path, list(form.items()))
        for headers in ({}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, {"X-Twilio-Signature": "clé"}):
            assert_problem(client.post(path, data=form, headers=headers), 403)
        # Signed for another body, or by another account: refused too.
        assert_problem(client.post(path, data=form | {"Body": "START"}, headers={"X-Twilio-Signature": signature}), 403)
        wrong = provider_signature("another-token", NOTIFICATIONS_URL + path, list(form.items()))
        assert_problem(client.post(path, data=form, headers={"X-Twilio-Signature": wrong}), 403)
        assert client.post(path, data=form, headers={"X-Twilio-Signature": signature}).status_code in (200, 204)


def test_with_the_file_provider_the_sms_webhooks_are_not_there(
    apps: dict[str, Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fresh(apps, "notifications")
    rt = client.application.extensions["gather_runtime"]
    monkeypatch.setitem(
        client.application.extensions,
        "gather_runtime",
        dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, sms_provider="file")),
    )
    for path in ("/v1/sms/inbound", "/v1/sms/status"):
        assert_problem(client.post(path, data={"From": "+447911123456", "Body": "STOP"}), 404)
