"""There is no Docker engine here, so these tests read docker-compose.yml instead of running it: every
process that `make run` starts (the Procfile) must run there too, with the contract's settings."""

import json
import re

import yaml

from gather_shared.bus import topology
from gather_shared.testing import REPO, procfile

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
CONTRACT_SETTINGS = {
    "GATHER_BROKER_URL",
    "GATHER_DATABASE_URL",
    "GATHER_ADMIN_TOKEN",
    "GATHER_SMTP_URL",
    "GATHER_SIGNUP_URL",
    "GATHER_NOTIFICATIONS_URL",
}


def test_every_process_make_run_starts_runs_in_compose_with_the_same_command() -> None:
    for name, command in procfile().items():
        assert name in SERVICES, f"{name} is in the Procfile but not in docker-compose.yml"
        in_compose = SERVICES[name]["command"]
        assert re.sub(r"--bind \S+", "", in_compose) == re.sub(r"--bind \S+", "", command), name


def test_compose_runs_nothing_of_gather_that_make_run_does_not() -> None:
    gather_services = {name for name, spec in SERVICES.items() if spec.get("image") == "gather:latest"}
    assert gather_services == set(procfile())


def test_each_process_is_configured_by_the_contract_variables_for_the_real_servers() -> None:
    for name in procfile():
        env = SERVICES[name]["environment"]
        assert CONTRACT_SETTINGS <= set(env), name
        assert env["GATHER_BROKER_URL"].startswith("amqp://"), name
        service = name.split("-")[0]
        assert env["GATHER_DATABASE_URL"].startswith("postgresql://"), name
        assert env["GATHER_DATABASE_URL"].endswith(f"/gather_{service}"), name
        assert env["GATHER_SMTP_URL"].startswith("smtp://mailpit:"), name


def test_web_services_listen_on_the_contract_ports() -> None:
    for name, port in {"events": 8001, "signup": 8002, "notifications": 8003}.items():
        assert f"--bind 0.0.0.0:{port}" in SERVICES[name]["command"]
        assert f"{port}:{port}" in SERVICES[name]["ports"]


def test_the_stack_has_rabbitmq_with_its_definitions_postgresql_with_each_database_and_an_smtp_catcher() -> None:
    assert SERVICES["rabbitmq"]["image"].startswith("rabbitmq:") and "management" in SERVICES["rabbitmq"]["image"]
    definitions = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())
    assert any(p["pattern"].endswith(r"\.dlq$") for p in definitions["policies"])
    init = (REPO / "deploy/postgres/init.sql").read_text()
    for service in ("events", "signup", "notifications"):
        assert f"CREATE DATABASE gather_{service};" in init
    assert "8025:8025" in SERVICES["mailpit"]["ports"]


def test_the_broker_keeps_every_dead_letter_as_long_as_the_consumer_says_and_no_longer() -> None:
    # The policy reaches queues declared before the TTL existed and RabbitMQ's own dead letters.
    policies = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())["policies"]
    for dlq in (q.dlq for q in topology.CONSUMERS.values()):
        [policy] = sorted((p for p in policies if re.search(p["pattern"], dlq)), key=lambda p: -p["priority"])[:1]
        assert policy["definition"]["message-ttl"] == topology.DEAD_LETTER_TTL_SECONDS * 1000
