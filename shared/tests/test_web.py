"""What every service answers the same way: problem details, health, correlation ids."""

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from gather_shared import web
from gather_shared.config import Settings
from gather_shared.db import make_engine, session_factory
from gather_shared.service import Runtime
from gather_shared.testing import fresh_pg_database


class Thing(Schema):
    name = fields.String(required=True)
    place = fields.Nested(Schema.from_dict({"city": fields.String(required=True)}), required=True)


def make_client(broker_url: str = "filesystem://", database_url: str | None = None) -> FlaskClient:
    settings = replace(
        Settings.from_env("events"),
        broker_url=broker_url,
        database_url=database_url or Settings.from_env("events").database_url,
    )
    engine = make_engine(settings.database_url)
    app, api = web.create_app(Runtime(settings, engine, session_factory(engine)), "test app")
    blp = Blueprint("things", __name__, url_prefix="/v1")

    @blp.route("/things", methods=["GET"])
    def count() -> dict:
        with web.current_runtime().sessions() as session:
            return {"things": session.scalar(sa.text("SELECT 0"))}

    @blp.route("/things", methods=["POST"])
    @blp.arguments(Thing)
    def create(body: dict) -> dict:
        raise web.Problem(409, "already_there", "There is one already.", current_status="published")

    api.register_blueprint(blp)
    return app.test_client()


@pytest.fixture
def client(service_env: Path) -> FlaskClient:
    return make_client()


def test_a_body_that_is_not_json_is_a_422_problem(client: FlaskClient) -> None:
    response = client.post("/v1/things", data="{not json", content_type="application/json")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_validation_errors_name_each_field_nested_ones_with_dots(client: FlaskClient) -> None:
    response = client.post("/v1/things", json={"place": {}})
    assert response.status_code == 422
    body = response.get_json()
    assert set(body["errors"]) == {"name", "place.city"}
    assert {"type", "title", "status", "detail"} <= set(body)


def test_a_problem_raised_by_a_service_carries_its_code_and_extras(client: FlaskClient) -> None:
    response = client.post("/v1/things", json={"name": "x", "place": {"city": "Leeds"}})
    assert response.status_code == 409
    assert response.get_json()["code"] == "already_there"
    assert response.get_json()["current_status"] == "published"


@pytest.mark.parametrize("method, path, status", [("GET", "/nowhere", 404), ("DELETE", "/healthz", 405)])
def test_unknown_paths_and_methods_are_problems_too(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_a_body_over_64_kib_is_refused_with_413(client: FlaskClient) -> None:
    response = client.post("/v1/things", data="x" * (65 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_the_request_id_is_echoed_or_made_up(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc"}).headers["X-Request-ID"] == "abc"
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_readyz_is_ready_when_database_and_broker_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_what_is_unreachable(service_env: Path) -> None:
    response = make_client("amqp://guest:guest@127.0.0.1:1//").get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["broker"].startswith("unreachable")
    assert make_client().get("/healthz").status_code == 200


def test_a_database_restart_is_a_503_to_retry_not_a_500(service_env: Path, pg_server_url: str) -> None:
    with fresh_pg_database(pg_server_url) as url:
        client = make_client(database_url=url)
        assert client.get("/v1/things").status_code == 200  # the pool now holds a connection
        # What a restart of PostgreSQL does to the pooled connections: their backends end.
        admin = make_engine(pg_server_url)
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                {"db": sa.engine.make_url(url).database},
            )
        admin.dispose()
        response = client.get("/v1/things")
        assert (response.status_code, response.mimetype) == (503, "application/problem+json")
        assert response.get_json()["code"] == "database_unavailable"
        assert response.headers["Retry-After"] == "1"
        assert client.get("/v1/things").status_code == 200  # the pool has reconnected
        client.application.extensions["gather_runtime"].engine.dispose()


@pytest.mark.parametrize(
    "name, known",
    [
        ("Europe/London", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Europe/Atlantis", False),
        ("../../etc/passwd", False),
        ("localtime", False),
        ("", False),
    ],
)
def test_time_zones_must_be_iana_names(name: str, known: bool) -> None:
    # `localtime` is a file in the system's zoneinfo folder: the server's own zone, which nobody means.
    assert web.is_time_zone(name) is known
