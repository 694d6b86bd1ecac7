"""What the pages do on their own, before any other service answers: the registration form's checks,
CSRF, the security headers, private pages never cached, and a calm page when a service is down."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

Publish = Callable[..., dict[str, Any]]
Read = Callable[[Any], Any]


def csrf_token(client: FlaskClient, read: Read, path: str) -> str:
    return read(client.get(path)).one("main form[method=post] input[name=csrf_token]")["value"]


def test_an_empty_registration_says_what_to_fix_next_to_each_field_and_keeps_what_was_typed(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish()
    path = f"/events/{event['id']}"
    token = csrf_token(client, read, path)
    response = client.post(
        path, data={"csrf_token": token, "display_name": "  ", "phone": "", "email": "", "timezone": "Europe/Paris"}
    )
    assert response.status_code == 422
    shown = read(response)
    assert shown.soup.title.get_text().startswith("Error:")
    summary = shown.one(".error-summary")
    assert summary["role"] == "alert" and summary.has_attr("autofocus")
    links = {a["href"]: a.get_text(strip=True) for a in summary.select("a")}
    assert links == {
        "#display_name": "Enter your first name or a nickname",
        "#channels": "Choose how we should send you messages",
        "#email": "Enter an email address or a mobile number",
    }
    for field in ("display_name", "email", "channels"):
        assert shown.one(f"#{field}-error").get_text(" ", strip=True).startswith("Error:")
    assert "display_name-error" in shown.one("#display_name")["aria-describedby"]
    # the channels' error belongs to their fieldset, which the screen reader announces with the legend
    assert "channels-error" in shown.one("#channels").find_parent("fieldset")["aria-describedby"]
    assert shown.one("#timezone option[selected]")["value"] == "Europe/Paris"


def test_a_channel_without_its_contact_is_said_next_to_the_missing_contact(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish()
    path = f"/events/{event['id']}"
    data = {"csrf_token": csrf_token(client, read, path), "display_name": "Sam", "email": "sam@example.org"}
    shown = read(client.post(path, data=data | {"channels": ["email", "sms"]}))
    assert shown.status == 422
    assert shown.text("#phone-error") == "Error: Enter a mobile number to get text messages, or untick text message"
    assert shown.one("#email")["value"] == "sam@example.org"
    assert shown.one("#display_name")["value"] == "Sam"
    assert [box["value"] for box in shown.soup.select("input[name=channels][checked]")] == ["email", "sms"]


def test_a_form_without_its_csrf_token_is_refused_with_a_page_saying_to_try_again(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish()
    response = client.post(f"/events/{event['id']}", data={"display_name": "Sam", "email": "sam@example.org"})
    assert response.status_code == 400
    assert read(response).one("h1").get_text(strip=True) == "This form has expired"


def test_when_the_signup_service_is_down_the_person_is_told_calmly_to_try_again(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish()
    path = f"/events/{event['id']}"
    data = {
        "csrf_token": csrf_token(client, read, path),
        "display_name": "Sam",
        "email": "sam@example.org",
        "channels": "email",
    }
    response = client.post(path, data=data)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert read(response).one("h1").get_text(strip=True) == "Sorry, we cannot do this right now"


def test_only_a_page_with_a_form_sets_a_cookie_and_it_holds_only_the_csrf_token(
    publish: Publish, client: FlaskClient
) -> None:
    event = publish()
    assert "Set-Cookie" not in client.get("/").headers
    [cookie] = client.get(f"/events/{event['id']}").headers.getlist("Set-Cookie")
    assert cookie.startswith("gather_csrf=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("path", ["/", "/events/{id}", "/events/{id}/check-your-messages", "/nowhere"])
def test_every_page_carries_the_security_headers_and_loads_nothing_from_elsewhere(
    path: str, publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish()
    response = client.get(path.format(id=event["id"]))
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    shown = read(response)
    loaded = [node.get("src") or node.get("href") for node in shown.soup.select("script, link, img")]
    assert loaded and all(url.startswith("/") and not url.startswith("//") for url in loaded)
    assert shown.soup.select("style, [style]") == []  # the CSP allows no inline style
    assert shown.soup.html["lang"]


@pytest.mark.parametrize("path", ["/verify/some-token", "/unsubscribe/some-token"])
def test_a_private_link_shows_a_button_without_acting_and_is_never_cached(
    path: str, client: FlaskClient, read: Read
) -> None:
    # The services behind are down here: a GET must not need them (mail scanners fetch links).
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    shown = read(response)
    [button] = shown.soup.select("main form[method=post] button")
    assert button.get_text(strip=True) in ("Confirm my place", "Stop reminders")


def test_a_manage_link_is_never_cached_even_when_it_cannot_be_shown(client: FlaskClient) -> None:
    response = client.get(f"/manage/{uuid.uuid4()}/some-token")
    assert response.status_code == 503
    assert response.headers["Cache-Control"] == "no-store"


def test_a_cancelled_event_says_so_and_takes_no_registration(publish: Publish, client: FlaskClient, read: Read) -> None:
    event = publish(status="cancelled")
    path = f"/events/{event['id']}"
    shown = read(client.get(path))
    assert "This event has been cancelled." in shown.text()
    assert shown.soup.select("main form[method=post]") == []


def test_before_registration_opens_the_page_says_when_it_opens_in_the_events_time_and_language(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    starts = datetime(2030, 6, 20, 17, tzinfo=UTC)
    opens = datetime(2030, 6, 1, 8, tzinfo=UTC)  # 09:00 in London that day (summer time), 10:00 in Madrid
    london = publish(registration_opens_at=opens, starts_at=starts)
    shown = read(client.get(f"/events/{london['id']}"))
    assert "Registration opens on Saturday, 1 June 2030, 09:00 (British Summer Time)." in shown.text()
    assert shown.soup.select("main form[method=post]") == []
    madrid = publish(registration_opens_at=opens, starts_at=starts, timezone="Europe/Madrid", language="es")
    spanish = read(client.get(f"/events/{madrid['id']}")).text()
    assert "La inscripción se abre el sábado, 1 de junio de 2030, 10:00 (hora de verano de Europa central)." in spanish
    # The listing says so in a word, not "places left": its page says when.
    listing = read(client.get("/", query_string={"q": london["title"]}))
    assert "Registration not open yet" in listing.text() and "places left" not in listing.text()


def test_a_registration_sent_before_registration_opens_is_told_kindly_when_to_come_back(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    """A form kept open in a tab, or sent by hand: an answer in words, never a bare error."""
    token = csrf_token(client, read, f"/events/{publish()['id']}")
    early = publish(
        registration_opens_at=datetime(2030, 6, 1, 8, tzinfo=UTC), starts_at=datetime(2030, 6, 20, tzinfo=UTC)
    )
    data = {"csrf_token": token, "display_name": "Sam", "email": "sam@example.org", "channels": "email"}
    response = client.post(f"/events/{early['id']}", data=data)
    assert response.status_code == 409
    shown = read(response)
    assert shown.text(".error-summary") == (
        "There is a problem Registration opens on Saturday, 1 June 2030, 09:00 (British Summer Time)."
    )
    assert shown.soup.select("main form[method=post]") == []


def test_the_page_speaks_the_events_language_and_writes_its_dates_that_way(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    welsh = publish(language="cy", starts_at=datetime(2031, 1, 7, 18, 30, tzinfo=UTC))
    shown = read(client.get(f"/events/{welsh['id']}", headers={"Accept-Language": "en"}))
    assert shown.soup.html["lang"] == "cy"
    assert "Dydd Mawrth, 7 Ionawr 2031, 18:30" in shown.text()
    french = publish(language="fr")
    assert read(client.get(f"/events/{french['id']}")).soup.html["lang"] == "en-GB"


def test_each_person_gets_a_token_of_their_own_even_from_a_page_rendered_once(
    publish: Publish, app: Any, read: Read
) -> None:
    event = publish()
    path = f"/events/{event['id']}"
    first, second = app.test_client(), app.test_client()
    mine, theirs = csrf_token(first, read, path), csrf_token(second, read, path)
    assert mine != theirs
    data = {"display_name": "Sam", "email": "sam@example.org", "channels": "email"}
    assert first.post(path, data=data | {"csrf_token": theirs}).status_code == 400
    assert first.post(path, data=data | {"csrf_token": mine}).status_code == 503  # past CSRF: signup is down


def test_a_manage_link_with_characters_no_token_has_is_a_page_not_found(client: FlaskClient, read: Read) -> None:
    response = client.get(f"/manage/{uuid.uuid4()}/%E2%82%AC%00")
    assert response.status_code == 404
    assert read(response).one("h1").get_text(strip=True) == "Page not found"
