"""The signup and notifications HTTP APIs, as the pages call them (internal bases GATHER_SIGNUP_URL and
GATHER_NOTIFICATIONS_URL). The pages hold no registration of their own: every registration, verification,
change and cancellation is the owning service's answer, passed on in words.

Each call forwards the browser's address (`X-Forwarded-For`), which a service honours only from a proxy it
trusts (so its per-address rate limits count people, not the pages), and the request's correlation id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from flask import g, request

from gather_shared.web import REQUEST_ID_HEADER

#: Connect quickly or not at all; a registration may wait a little for the seat lock.
TIMEOUT = (3.05, 15)


class ServiceUnavailableError(Exception):
    """The service did not answer (down, unreachable, or a 5xx): the page asks to try again shortly."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        """The problem's code (`event_full`, `validation_error`…), None for a success."""
        return None if self.ok else self.body.get("code")

    @property
    def errors(self) -> dict[str, list[str]]:
        """A validation problem's `errors`: {field: [messages]}."""
        return self.body.get("errors") or {}


class Apis:
    """One per process: a pooled HTTP session to each service."""

    def __init__(self, signup_url: str, notifications_url: str) -> None:
        self.signup_url = signup_url.rstrip("/")
        self.notifications_url = notifications_url.rstrip("/")
        self.http = requests.Session()

    def _call(self, method: str, url: str, token: str | None = None, **kwargs: Any) -> Answer:
        headers = {
            "Accept": "application/json",
            "X-Forwarded-For": request.remote_addr or "",
            REQUEST_ID_HEADER: g.get("correlation_id") or uuid.uuid4().hex,
        }
        if token is not None:
            if not (token.isascii() and token.isprintable()):
                return Answer(401, {})  # no token we sign looks like this; a header could not even carry it
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self.http.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"{method} {url.split('/v1/')[0]}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ServiceUnavailableError(f"{method} {url.split('/v1/')[0]}: {response.status_code}")
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}  # an HTML page, say: its status says enough
        return Answer(response.status_code, body if isinstance(body, dict) else {})

    # --- signup ---

    def register(self, event_id: uuid.UUID, body: dict[str, Any]) -> Answer:
        """202 check_your_messages (a link goes to the contact), or 201 with the manage token at once."""
        return self._call("POST", f"{self.signup_url}/v1/events/{event_id}/signups", json=body)

    def verify(self, token: str) -> Answer:
        """200 the registration, now confirmed or waitlisted; 410 for a link expired or used."""
        return self._call("POST", f"{self.signup_url}/v1/verifications/{_segment(token)}")

    def registration(self, signup_id: uuid.UUID, token: str) -> Answer:
        return self._call("GET", f"{self.signup_url}/v1/signups/{signup_id}", token)

    def change(self, signup_id: uuid.UUID, token: str, body: dict[str, Any]) -> Answer:
        return self._call("PATCH", f"{self.signup_url}/v1/signups/{signup_id}", token, json=body)

    def cancel(self, signup_id: uuid.UUID, token: str, erase: bool) -> Answer:
        params = {"erase": "true"} if erase else {}
        return self._call("DELETE", f"{self.signup_url}/v1/signups/{signup_id}", token, params=params)

    # --- notifications ---

    def unsubscribe(self, token: str) -> Answer:
        return self._call("POST", f"{self.notifications_url}/v1/unsubscribe/{_segment(token)}")


def _segment(token: str) -> str:
    """A token as one path segment: a link someone edited must not reach another path of the API."""
    return quote(token, safe="")
