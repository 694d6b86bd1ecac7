"""Gather's pytest plugin (registered through the `pytest11` entry point in shared/pyproject.toml, so
every test directory and any single test file gets these fixtures): the tiers of real servers, a
database per test or per module, a service's app on it, and the whole platform the cross-service tests
share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gather_shared.testing import cluster, tiers
from gather_shared.testing.cluster import RabbitCluster
from gather_shared.testing.service import (
    ADMIN_TOKEN,
    RATE_LIMITS_OFF,
    ServiceUnderTest,
    deliver,
    empty_tables,
    module_service,
)
from gather_shared.testing.tiers import ExchangeSpy, fresh_pg_database, fresh_pg_databases, fresh_vhost

if TYPE_CHECKING:  # the plugin loads before any test: it imports no application code
    from flask import Flask
    from flask.testing import FlaskClient

    from gather_shared.service import Runtime
    from gather_shared.testing.platform import Platform


def pytest_report_header(config: pytest.Config) -> list[str]:
    return tiers.report_header()


#: The fixtures that start the whole platform (or a broker cluster) as separate processes: a test using one
#: is in the `slow` tier, which `-m "not slow"` leaves out while one works (CI runs every tier).
PLATFORM_FIXTURES = frozenset({"platform", "embedded_platform", "real_platform", "rabbit_cluster"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PLATFORM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


#: What tests measured, for the summary (the `report` fixture).
FIGURES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in [*tiers.skipped(), *cluster.skipped()]:
        terminalreporter.write_line(line, yellow=True)
    for line in config.stash.get(FIGURES, []):
        terminalreporter.write_line(f"gather: {line}")


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Call it with a line a test measured (say, how many emails were lost or sent twice): pytest's
    summary prints it after the run, even for a test that passed and whose output was captured."""
    return request.config.stash.setdefault(FIGURES, []).append


def pytest_sessionfinish(session: pytest.Session) -> None:
    tiers.stop_containers()


# --- the real servers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return tiers.require("postgresql")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return tiers.require("rabbitmq")


@pytest.fixture(scope="session", params=["embedded", "real"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Every process of Gather, on SQLite + filesystem:// and on PostgreSQL + RabbitMQ (every service's
    database, the attendee pages' too), started once per run and shared by the tests that use it as its
    users would: none kills a process or needs a setting of its own, and each makes its own organizer,
    events and contacts (unique_email, unique_phone), so that none sees what another did. A test of one
    tier asks for it: `@pytest.mark.parametrize("platform", ["real"], indirect=True)`. A test that breaks
    something starts a platform of its own (running_platform). SMS go at once, whatever the hour."""
    from gather_shared.testing.platform import running_platform, sms_goes_now

    workdir = tmp_path_factory.mktemp(f"platform-{request.param}")
    if request.param == "embedded":
        with running_platform(workdir, None, None, sms_goes_now()) as started:
            yield started
        return
    with (
        fresh_pg_databases(request.getfixturevalue("pg_server_url"), SHARED_PLATFORM_DATABASES) as urls,
        fresh_vhost(request.getfixturevalue("amqp_url")) as broker_url,
        running_platform(workdir, urls, broker_url, sms_goes_now()) as started,
    ):
        yield started


@pytest.fixture
def exchange_spy(platform: Platform) -> Iterator[ExchangeSpy]:
    """A copy of every message the (real tier's) platform publishes during the test, deleted after it."""
    spy = ExchangeSpy(platform.env["GATHER_BROKER_URL"])
    yield spy
    spy.delete()


#: The services whose databases the shared platform's real tier keeps on PostgreSQL: all of them.
SHARED_PLATFORM_DATABASES = ("events", "signup", "notifications", "pages")


@pytest.fixture
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """Three RabbitMQ nodes clustered on this machine (testing/cluster.py), stopped and deleted after the
    test; skipped (failed, with GATHER_REQUIRE_SERVICES=1) where rabbitmq-server cannot run them."""
    with cluster.rabbit_cluster() as formed:
        yield formed


@pytest.fixture
def clean_amqp_url(amqp_url: str) -> Iterator[str]:
    with fresh_vhost(amqp_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that uses it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
        return
    with fresh_pg_database(request.getfixturevalue("pg_server_url")) as url:
        yield url


# --- one service in this process --------------------------------------------------------------------


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in a fresh working directory (so `var/` is the test's own) with a known admin token."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATHER_ADMIN_TOKEN", ADMIN_TOKEN)
    for name, value in RATE_LIMITS_OFF.items():
        monkeypatch.setenv(name, value)
    for name in ("GATHER_BROKER_URL", "GATHER_DATABASE_URL", "GATHER_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, service_under_test: ServiceUnderTest
) -> Iterator[Flask]:
    """The app of the service under test (the `service_under_test` fixture of its conftest) for a whole
    test module, on SQLite and then on PostgreSQL (see module_service)."""
    with module_service(request, tmp_path_factory, service_under_test.name, **service_under_test.env):
        app = service_under_test.create_app()
        yield app
        app.extensions["gather_runtime"].engine.dispose()


@pytest.fixture
def app(module_app: Flask, service_under_test: ServiceUnderTest) -> Flask:
    """The app on an empty database (SQLite, then PostgreSQL)."""
    empty_tables(module_app.extensions["gather_runtime"].engine, service_under_test.metadata)
    return module_app


@pytest.fixture
def rt(app: Flask) -> Runtime:
    """The app's runtime: its settings, engine and sessions."""
    return app.extensions["gather_runtime"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app (a service's conftest may give its own)."""
    return app.test_client()


@pytest.fixture
def send(rt: Runtime, service_under_test: ServiceUnderTest) -> Callable[..., Any]:
    """Deliver a message to the service as its consumer would, through its handlers (service_under_test)."""
    assert service_under_test.handlers is not None, "service_under_test names no handlers"
    table = service_under_test.handlers(rt.settings)
    return lambda type_, data, **kwargs: deliver(rt.sessions, table, type_, data, **kwargs)
