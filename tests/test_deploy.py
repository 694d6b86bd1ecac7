"""There is no Docker engine here, so these tests read docker-compose.yml and the files it mounts instead of
running it: every process that `make run` starts (the Procfile) runs there too, with the contract's
settings; nothing starts with a default secret; only the services' own ports are published beyond this
machine; each service logs in to PostgreSQL and RabbitMQ as a user limited to what it owns.
(tests/test_broker_users.py tries the RabbitMQ users' permissions on a real broker.)"""

import ipaddress
import json
import re

import yaml

from gather_shared import messages
from gather_shared.bus import topology
from gather_shared.testing import REPO, procfile

COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
DEFINITIONS = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())
CONTRACT_SETTINGS = {
    "GATHER_BROKER_URL",
    "GATHER_DATABASE_URL",
    "GATHER_ADMIN_TOKEN",
    "GATHER_SECRET_KEY",
    "GATHER_SMTP_URL",
    "GATHER_PUBLIC_URL",
    "GATHER_SIGNUP_URL",
    "GATHER_NOTIFICATIONS_URL",
}
WEB_PORTS = {"pages": 8000, "events": 8001, "signup": 8002, "notifications": 8003}
INFRASTRUCTURE = ("rabbitmq", "postgres", "mailpit")
#: services/pages is being written beside this: the Procfile gains its processes with its package.
PAGES = set() if (REPO / "services/pages/pyproject.toml").exists() else {"pages", "pages-consumer"}


def gather_processes() -> dict[str, dict]:
    return {name: spec for name, spec in SERVICES.items() if spec.get("image") == "gather:latest"}


def required(value: str) -> list[str]:
    """The variables `value` takes from the environment, each of which must be set (`${NAME:?...}`)."""
    return re.findall(r"\$\{([A-Z0-9_]+):\?[^}]*\}", value)


def test_every_process_make_run_starts_runs_in_compose_with_the_same_command() -> None:
    for name, command in procfile().items():
        assert name in SERVICES, f"{name} is in the Procfile but not in docker-compose.yml"
        in_compose = SERVICES[name]["command"]
        assert re.sub(r"--bind \S+", "", in_compose) == re.sub(r"--bind \S+", "", command), name


def test_compose_runs_nothing_of_gather_that_make_run_does_not() -> None:
    assert set(gather_processes()) - PAGES == set(procfile())


def test_each_process_is_configured_by_the_contract_variables_for_the_real_servers() -> None:
    for name, spec in gather_processes().items():
        env = spec["environment"]
        assert CONTRACT_SETTINGS <= set(env), name
        service = name.split("-")[0]
        assert re.fullmatch(rf"amqp://{service}:\$\{{[^}}]+\}}@rabbitmq:5672/gather", env["GATHER_BROKER_URL"]), name
        assert re.fullmatch(
            rf"postgresql://gather_{service}:\$\{{[^}}]+\}}@postgres:5432/gather_{service}", env["GATHER_DATABASE_URL"]
        ), name
        assert env["GATHER_SMTP_URL"].startswith("smtp://mailpit:"), name


def test_the_pages_service_runs_its_web_app_and_its_consumer_and_reaches_the_apis_inside_the_stack() -> None:
    assert SERVICES["pages"]["command"].endswith("'gather_pages.app:create_app()'")
    assert SERVICES["pages-consumer"]["command"] == "python -m gather_pages consume"
    for name in ("pages", "pages-consumer"):
        env = SERVICES[name]["environment"]
        assert (env["GATHER_SIGNUP_URL"], env["GATHER_NOTIFICATIONS_URL"]) == (
            "http://signup:8002",
            "http://notifications:8003",
        )


def test_signup_and_notifications_believe_x_forwarded_for_from_the_pages_only() -> None:
    pages = SERVICES["pages"]["networks"]["default"]["ipv4_address"]
    subnets = [pool["subnet"] for pool in COMPOSE["networks"]["default"]["ipam"]["config"]]
    assert any(ipaddress.ip_address(pages) in ipaddress.ip_network(subnet) for subnet in subnets)
    for name, spec in gather_processes().items():
        trusted = spec["environment"].get("GATHER_TRUSTED_PROXIES")
        assert trusted == (pages if name.split("-")[0] in ("signup", "notifications") else None), name


def test_web_services_listen_on_the_contract_ports() -> None:
    for name, port in WEB_PORTS.items():
        assert f"--bind 0.0.0.0:{port}" in SERVICES[name]["command"]
        assert SERVICES[name]["ports"] == [f"{port}:{port}"]
    assert not [name for name in gather_processes() if name not in WEB_PORTS and "ports" in SERVICES[name]]


def test_nothing_starts_with_a_default_secret() -> None:
    # Every variable taken from the environment must be set: no `${NAME:-default}`, no `${NAME}` left empty.
    text = "\n".join(line for line in COMPOSE_TEXT.splitlines() if not line.lstrip().startswith("#"))
    assert re.findall(r"\$\{[^}]*\}", text) == re.findall(r"\$\{[A-Z0-9_]+:\?[^}]*\}", text)
    for name, spec in SERVICES.items():
        for variable, value in spec.get("environment", {}).items():
            value = str(value)
            if re.search(r"PASSWORD|TOKEN|SECRET", variable):
                assert required(value), f"{name}: {variable}"
            for url_password in re.findall(r"://[^:/@]+:([^@]*)@", value):
                assert required(url_password), f"{name}: {variable}"


def test_the_database_broker_and_mail_catcher_answer_on_this_machine_only() -> None:
    for name in INFRASTRUCTURE:
        for port in SERVICES[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_each_service_owns_its_database_as_a_role_of_its_own() -> None:
    init = (REPO / "deploy/postgres/init.sh").read_text()
    services = {name.split("-")[0] for name in gather_processes()}
    assert set(re.search(r"for service in ([a-z ]+); do", init).group(1).split()) == services
    assert 'CREATE DATABASE :"name" OWNER :"name";' in init and 'REVOKE ALL ON DATABASE :"name" FROM PUBLIC;' in init
    postgres_env = SERVICES["postgres"]["environment"]
    for service in services:
        assert required(postgres_env[f"POSTGRES_{service.upper()}_PASSWORD"])
    assert required(postgres_env["POSTGRES_PASSWORD"])


def test_each_service_logs_in_to_rabbitmq_as_a_user_of_its_own_whose_password_compose_requires() -> None:
    users = {user["name"]: user for user in DEFINITIONS["users"]}
    services = {name.split("-")[0] for name in gather_processes()}
    assert set(users) == services | {"admin"}
    rabbitmq_env = SERVICES["rabbitmq"]["environment"]
    entrypoint = (REPO / "deploy/rabbitmq/entrypoint.sh").read_text()
    for name, user in users.items():
        variable = f"RABBITMQ_{name.upper()}_PASSWORD"
        assert user["password"] == f"@{variable}@"  # entrypoint.sh fills it in
        assert required(rabbitmq_env[variable])
        assert name.upper() in re.search(r"for name in ([A-Z ]+); do", entrypoint).group(1).split()
        assert user["tags"] == ("administrator" if name == "admin" else "")
    assert SERVICES["rabbitmq"]["entrypoint"] == ["/gather/rabbitmq/entrypoint.sh"]
    config = (REPO / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/gather-definitions.json" in config
    assert "loopback_users.guest = true" in config  # the image lets guest/guest in from anywhere otherwise


def queue_names(q: topology.ConsumerQueue) -> list[str]:
    return [q.name, q.dlq, *(q.retry_queue(delay) for delay in topology.RETRY_DELAYS_SECONDS)]


def permissions(user: str) -> tuple[dict, dict]:
    [plain] = [p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == "gather"]
    [topic] = [p for p in DEFINITIONS["topic_permissions"] if p["user"] == user and p["exchange"] == topology.EXCHANGE]
    return plain, topic


def allows(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None  # RabbitMQ matches as re.search does ("" means "^$")


def test_each_rabbitmq_user_may_touch_its_own_queues_and_no_other() -> None:
    for service in {name.split("-")[0] for name in gather_processes()}:
        plain, _ = permissions(service)
        own = queue_names(topology.CONSUMERS[service]) if service in topology.CONSUMERS else []
        others = [name for q in topology.CONSUMERS.values() if q.service != service for name in queue_names(q)]
        publishes = any(topology.sender(type_) == f"/gather/{service}" for type_ in messages.SCHEMAS)
        # Every process declares the exchange; a consumer declares, binds and reads its queues, and sends
        # retries and dead letters to them through the default exchange (RabbitMQ also asks for read on a
        # queue and write on the default exchange to declare a queue that dead-letters there).
        expected = {
            "configure": {topology.EXCHANGE: True, "amq.default": False} | dict.fromkeys(own, True),
            "write": {topology.EXCHANGE: publishes, "amq.default": bool(own)} | dict.fromkeys(own, True),
            "read": {topology.EXCHANGE: bool(own), "amq.default": False} | dict.fromkeys(own, True),
        }
        for kind, names in expected.items():
            names |= dict.fromkeys([*others, "gather.other", "gather.events.x"], False)
            actual = {name: allows(plain[kind], name) for name in names}
            assert actual == names, f"{service} {kind}"


def test_each_rabbitmq_user_may_publish_the_message_types_it_sends_and_bind_the_keys_it_listens_to_only() -> None:
    all_keys = {key for q in topology.CONSUMERS.values() for key in q.bindings} | {"#", "*.#", "notification.#"}
    for service in {name.split("-")[0] for name in gather_processes()}:
        _, topic = permissions(service)
        sends = {type_: topology.sender(type_) == f"/gather/{service}" for type_ in messages.SCHEMAS}
        assert {type_: allows(topic["write"], type_) for type_ in messages.SCHEMAS} == sends, service
        listens = set(topology.CONSUMERS[service].bindings) if service in topology.CONSUMERS else set()
        assert {key: allows(topic["read"], key) for key in all_keys} == {key: key in listens for key in all_keys}


def test_the_broker_creates_every_queue_at_boot_as_the_consumers_declare_it() -> None:
    # Each process declares only its own queues: the others must exist before anything is published.
    expected = topology.broker_definitions("gather")
    actual = {key: DEFINITIONS.get(key) for key in expected}
    assert actual == expected, "run .venv/bin/python deploy/rabbitmq/update_definitions.py"


def test_the_stack_has_rabbitmq_with_its_definitions_and_an_smtp_catcher() -> None:
    assert SERVICES["rabbitmq"]["image"].startswith("rabbitmq:") and "management" in SERVICES["rabbitmq"]["image"]
    assert any(p["pattern"].endswith(r"\.dlq$") for p in DEFINITIONS["policies"])
    assert SERVICES["mailpit"]["ports"] == ["127.0.0.1:8025:8025"]


def test_the_broker_keeps_every_dead_letter_as_long_as_the_consumer_says_and_no_longer() -> None:
    # The policy reaches queues declared before the TTL existed and RabbitMQ's own dead letters.
    policies = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())["policies"]
    for dlq in (q.dlq for q in topology.CONSUMERS.values()):
        [policy] = sorted((p for p in policies if re.search(p["pattern"], dlq)), key=lambda p: -p["priority"])[:1]
        assert policy["definition"]["message-ttl"] == topology.DEAD_LETTER_TTL_SECONDS * 1000
        # Read (and given back) by every erasure's search: never dropped for that (RabbitMQ 4.0-4.2).
        assert policy["definition"]["delivery-limit"] == topology.DEAD_LETTER_DELIVERY_LIMIT
