"""Fixtures for the events service's tests: its app on SQLite and PostgreSQL, and a client that speaks
its API the way an organizer or a visitor does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.engine import Engine

from gather_events.app import create_app
from gather_events.store import metadata
from gather_shared import testing
from gather_shared.db import utcnow


class EventsClient:
    """Calls to the events service, as its users make them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http = app.test_client()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.open(path, method=method, headers=headers, **kwargs)

    def set_clock(self, when: datetime) -> None:
        self.app.config["GATHER_CLOCK"] = lambda: when

    def organizer(self, name: str = "Mind Matters") -> dict[str, Any]:
        response = self.call(
            "POST", "/v1/organizers", testing.ADMIN_TOKEN, json={"name": name, "email": "org@example.org"}
        )
        assert response.status_code == 201, response.json
        return response.json

    def draft(self, key: str, **overrides: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/events", key, json=testing.event_body(**overrides))
        assert response.status_code == 201, response.json
        return response.json

    def published(self, key: str, **overrides: Any) -> dict[str, Any]:
        event = self.draft(key, **overrides)
        response = self.call("POST", f"/v1/events/{event['id']}/publish", key)
        assert response.status_code == 200, response.json
        return response.json

    def messages(self) -> list[dict[str, Any]]:
        """Every message the service has emitted so far, each validated against its shared schema."""
        return testing.outbox_messages(self.engine)

    @property
    def engine(self) -> Engine:
        return self.app.extensions["gather_runtime"].engine


@pytest.fixture(scope="session")
def service_under_test() -> testing.ServiceUnderTest:
    """For the plugin's `module_app`, `app` and `rt`."""
    return testing.ServiceUnderTest("events", create_app, metadata)


@pytest.fixture
def app(app: Flask) -> Flask:
    """The plugin's app (on an empty database, SQLite then PostgreSQL), with the real clock."""
    app.config["GATHER_CLOCK"] = utcnow
    return app


@pytest.fixture
def client(app: Flask) -> EventsClient:
    return EventsClient(app)


@pytest.fixture
def plumbing_client(service_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsClient]:
    """For what does not depend on the database (routing, body limits, the OpenAPI document): SQLite only."""
    monkeypatch.setenv("GATHER_DATABASE_URL", f"sqlite:///{service_env}/plumbing.db")
    app = create_app()
    yield EventsClient(app)
    app.extensions["gather_runtime"].engine.dispose()


@pytest.fixture
def organizer(client: EventsClient) -> dict[str, Any]:
    return client.organizer("Mind Matters")


@pytest.fixture
def key(organizer: dict[str, Any]) -> str:
    return organizer["api_key"]
