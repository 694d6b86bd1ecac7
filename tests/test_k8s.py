"""deploy/k8s, without a cluster: what docs/operations.md ("Kubernetes") promises of the manifests. Each overlay
is built with kustomize (or kubectl's built-in kustomize) where one is on PATH, its built-in kinds are
validated against the Kubernetes API's JSON schemas (kubernetes-validate, offline), and the built whole is
checked: every Procfile process, probes, the one public origin, non-root pods on read-only filesystems with
limits, autoscalers and disruption budgets, the migrations, the operators' resources. Without a builder the
files themselves are still checked: they parse, every file a kustomization names exists, no secret is written
in them, and deploy/k8s/new-secrets.py makes every Secret they read."""

from __future__ import annotations

import functools
import json
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from gather_shared.bus import topology
from gather_shared.testing import REPO, procfile

K8S = REPO / "deploy/k8s"
OVERLAYS = ("dev", "production")
Doc = dict[str, Any]

#: The oldest Kubernetes the manifests are written for (docs/operations.md), and the newest schemas at hand.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
SERVICES = ("events", "signup", "notifications", "pages")
#: Where each web process is served on the public origin (the Ingress) and so what SCRIPT_NAME it serves under.
WEB_PATHS = {"pages": "", "events": "/api/events", "signup": "/api/signup", "notifications": "/api/notifications"}
#: Workers with an autoscaler (they follow their queue); the other workers have fixed counts.
CONSUMERS = {f"{service}-consumer": service for service in topology.CONSUMERS}
#: The operators' kinds, which no Kubernetes schema knows: checked field by field below.
RABBITMQ_KINDS = ("RabbitmqCluster", "Vhost", "User", "Permission", "TopicPermission", "Policy", "Exchange", "Queue")
OPERATOR_KINDS = {
    *(("rabbitmq.com/v1beta1", kind) for kind in (*RABBITMQ_KINDS, "Binding")),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
#: Secrets that new-secrets.py does not make: CloudNativePG's CA, and the outside accounts their owners give.
MADE_BY_OTHERS = {"gather-postgres-ca", "gather-smtp", "gather-sms", "gather-tls"}
#: Variable names whose value is a credential: never written, always read from a Secret.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_SID$|SMTP_URL")
#: The user and password of a URL: the manifests put them in as `$(VAR)` references only.
USERINFO = re.compile(r"://([^/\s@]*)@")
REFERENCES = re.compile(r"\$\([A-Z_]+\)(:\$\([A-Z_]+\))?")


# --- the files, with or without a builder ------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def walk(node: Any) -> Iterator[Any]:
    """Every dict, list and value in a parsed YAML document."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def referenced_secrets(node: Any) -> dict[str, set[str]]:
    """Secret name -> the keys read from it (empty: read whole), wherever a manifest reads one."""
    found: dict[str, set[str]] = {}
    for item in walk(node):
        if not isinstance(item, dict):
            continue
        if "secretKeyRef" in item:
            found.setdefault(item["secretKeyRef"]["name"], set()).add(item["secretKeyRef"]["key"])
        for field in ("secretRef", "passwordSecret", "importCredentialsSecret", "secret"):
            if isinstance(item.get(field), dict) and "name" in item[field]:
                found.setdefault(item[field]["name"], set())
        if "secretName" in item:
            found.setdefault(item["secretName"], set()).update(entry["key"] for entry in item.get("items", []))
    return found


def written_credentials(text: str) -> list[str]:
    return [userinfo for userinfo in USERINFO.findall(text) if not REFERENCES.fullmatch(userinfo)]


def test_every_file_parses_and_every_file_a_kustomization_names_exists() -> None:
    assert yaml_files()
    for path in yaml_files():
        documents(path)  # raises on a YAML error
    for kustomization in K8S.rglob("kustomization.yaml"):
        (spec,) = documents(kustomization)
        here = kustomization.parent
        named = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []) if "path" in p)]
        named += [env for generator in spec.get("configMapGenerator", []) for env in generator.get("envs", [])]
        for name in named:
            target = here / name
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{kustomization}: {name}"


def test_prometheus_scrapes_every_process_on_its_metrics_port_which_no_service_routes() -> None:
    base = [doc for path in sorted((K8S / "base").glob("*.yaml")) for doc in documents(path)]
    settings = dict(line.split("=", 1) for line in (K8S / "base/settings.env").read_text().splitlines() if "=" in line)
    processes = {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]["containers"][0]
        for doc in base
        if doc["kind"] == "Deployment"
    }
    assert set(processes) == set(procfile())
    for name, process in processes.items():
        assert {"name": "metrics", "containerPort": int(settings["GATHER_METRICS_PORT"])} in process["ports"], name
    (monitor,) = [doc for doc in base if doc["kind"] == "PodMonitor"]
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    routed = {str(port["targetPort"]) for doc in base if doc["kind"] == "Service" for port in doc["spec"]["ports"]}
    assert "metrics" not in routed and settings["GATHER_METRICS_PORT"] not in routed


def test_no_secret_value_is_written_in_the_manifests() -> None:
    for path in yaml_files():
        for doc in documents(path):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path
            for item in walk(doc):
                if isinstance(item, str):
                    assert not written_credentials(item), f"{path}: {item}"
                if isinstance(item, dict) and "name" in item and "value" in item and SECRET_NAME.search(item["name"]):
                    raise AssertionError(f"{path}: {item['name']} is written, not read from a Secret")
    for path in K8S.rglob("*.env"):
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if line and not line.startswith("#"):
                assert not SECRET_NAME.search(name), f"{path}: {name} is written, not read from a Secret"
                assert not written_credentials(value), f"{path}: {line}"


def test_new_secrets_makes_every_secret_the_manifests_read_each_time_anew() -> None:
    def run() -> dict[str, Doc]:
        printed = subprocess.run(
            [sys.executable, str(K8S / "new-secrets.py")], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        return {item["metadata"]["name"]: item for item in json.loads(printed)["items"]}

    made, again = run(), run()
    read: dict[str, set[str]] = {}
    for path in yaml_files():
        for name, keys in referenced_secrets(documents(path)).items():
            read.setdefault(name, set()).update(keys)
    assert set(made) == set(read) - MADE_BY_OTHERS
    users = {user["name"] for user in json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())["users"]}
    for name, secret in made.items():
        assert secret["kind"] == "Secret"
        assert read[name] <= set(secret["stringData"]), name
        for key, value in secret["stringData"].items():
            if key != "username":
                # URL-safe, so that the manifests can put it into a URL as it is; new at each run.
                assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", value), (name, key)
                assert value != again[name]["stringData"][key], (name, key)
    for service in SERVICES:
        database = made[f"gather-postgres-{service}"]
        # CloudNativePG reads a role's password only from a basic-auth Secret named after the role.
        assert database["type"] == "kubernetes.io/basic-auth"
        assert database["stringData"]["username"] == f"gather_{service}"
        assert made[f"gather-rabbitmq-{service}"]["stringData"]["username"] in users


def test_the_rabbitmq_resources_are_those_of_definitions_json() -> None:
    render = runpy.run_path(str(K8S / "update_rabbitmq.py"))["render"]
    assert render() == (K8S / "base/rabbitmq-definitions.yaml").read_text(), (
        "run .venv/bin/python deploy/k8s/update_rabbitmq.py"
    )


# --- the overlays, built ---------------------------------------------------------------------------


def builder() -> list[str] | None:
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    return None


@functools.cache
def build(overlay: str) -> tuple[Doc, ...]:
    command = builder()
    if command is None:
        pytest.skip("no kustomize or kubectl on PATH: the overlays are not built (their files are checked above)")
    result = subprocess.run(
        [*command, str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(workload: Doc) -> Doc:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def env(workload: Doc) -> dict[str, Doc]:
    return {entry["name"]: entry for entry in container(workload).get("env", [])}


def settings(docs: tuple[Doc, ...]) -> dict[str, str]:
    (config_map,) = (
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("gather-settings")
    )
    return config_map["data"]


@pytest.fixture(scope="module")
def schemas_read_once() -> Iterator[None]:
    """kubernetes-validate parses its schema files (megabytes of JSON) again for each resource: parse each once."""
    with pytest.MonkeyPatch.context() as patch:
        read = functools.cache(kubernetes_validate.utils.schema_contents)
        patch.setattr(kubernetes_validate.utils, "schema_contents", read)
        yield


def every_built_in_kind_is_valid_for_the_kubernetes_api(built: tuple[Doc, ...]) -> None:
    unknown = set()
    for doc in built:
        for version in KUBERNETES_VERSIONS:
            try:
                # strict: a field the API does not know (a typo, a misplaced key) fails too.
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                unknown.add((doc["apiVersion"], doc["kind"]))
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} ({version}): {exc}") from exc
    assert unknown <= OPERATOR_KINDS


def web_port(name: str) -> int:
    """The port a web process of the Procfile binds."""
    command = shlex.split(procfile()[name])
    return int(command[command.index("--bind") + 1].rsplit(":", 1)[1])


def every_procfile_process_is_a_deployment_running_its_command(built: tuple[Doc, ...]) -> None:
    deployments = of_kind(built, "Deployment")
    assert set(deployments) == set(procfile())
    for name, line in procfile().items():
        expected = shlex.split(line)
        if name in WEB_PATHS:  # the same port, on every address of the pod
            expected[expected.index("--bind") + 1] = f"0.0.0.0:{web_port(name)}"
        assert container(deployments[name])["command"] == expected, name


def each_web_process_is_probed_served_and_routed_on_the_one_origin(built: tuple[Doc, ...]) -> None:
    deployments, services = of_kind(built, "Deployment"), of_kind(built, "Service")
    (ingress,) = of_kind(built, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    routes = {path["path"]: path["backend"]["service"] for path in rule["http"]["paths"]}
    origin = settings(built)["GATHER_PUBLIC_URL"]
    assert rule["host"] == urlsplit(origin).hostname
    assert settings(built)["GATHER_SIGNUP_URL"] == origin + WEB_PATHS["signup"]
    assert settings(built)["GATHER_NOTIFICATIONS_URL"] == origin + WEB_PATHS["notifications"]
    for name, prefix in WEB_PATHS.items():
        web = container(deployments[name])
        port = web_port(name)
        assert {"name": "http", "containerPort": port} in web["ports"]
        assert web["readinessProbe"]["httpGet"] == {"path": f"{prefix}/readyz", "port": "http"}
        assert web["livenessProbe"]["httpGet"] == {"path": f"{prefix}/healthz", "port": "http"}
        assert env(deployments[name]).get("SCRIPT_NAME", {}).get("value", "") == prefix
        assert services[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert {"name": "http", "port": port, "targetPort": "http"} in services[name]["spec"]["ports"]
        assert routes[prefix or "/"] == {"name": name, "port": {"name": "http"}}
    assert len(routes) == len(WEB_PATHS)


def every_pod_runs_as_non_root_on_a_read_only_root_within_limits(built: tuple[Doc, ...]) -> None:
    workloads = [doc for doc in built if doc["kind"] in ("Deployment", "Job")]
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name  # numeric: the kubelet can check it is not root
        assert pod["automountServiceAccountToken"] is False, name
        gather = container(workload)
        assert gather["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        for bound in ("requests", "limits"):
            assert set(gather["resources"][bound]) == {"cpu", "memory"}, name
        # What may be written is an emptyDir: /tmp everywhere (and the dev sender's outbox).
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for mount in gather["volumeMounts"]:
            assert mount.get("readOnly") or "emptyDir" in volumes[mount["name"]], (name, mount)
        assert any(mount["mountPath"] == "/tmp" for mount in gather["volumeMounts"]), name


def each_process_logs_in_to_its_own_database_and_vhost_with_its_own_secrets(built: tuple[Doc, ...]) -> None:
    (postgres_cluster,) = of_kind(built, "Cluster")  # the names
    (rabbitmq_cluster,) = of_kind(built, "RabbitmqCluster")
    for workload in [doc for doc in built if doc["kind"] in ("Deployment", "Job")]:
        service = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        variables = env(workload)
        database, broker = variables["GATHER_DATABASE_URL"]["value"], variables["GATHER_BROKER_URL"]["value"]
        assert urlsplit(database).hostname == f"{postgres_cluster}-rw"  # the primary, through CloudNativePG's Service
        assert urlsplit(database).path == f"/gather_{service}"
        assert "sslmode=verify-full" in database
        assert urlsplit(broker).hostname == rabbitmq_cluster and urlsplit(broker).path == "/gather"
        assert variables["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"gather-postgres-{service}"
        assert variables["BROKER_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"gather-rabbitmq-{service}"
        # Kubernetes expands $(NAME) only from variables defined above it.
        names = [entry["name"] for entry in container(workload)["env"]]
        for position, entry in enumerate(container(workload)["env"]):
            for reference in re.findall(r"\$\(([A-Z_]+)\)", entry.get("value", "")):
                assert reference in names[:position], (workload["metadata"]["name"], entry["name"], reference)


def web_and_consumers_autoscale_and_the_other_workers_have_fixed_counts(built: tuple[Doc, ...]) -> None:
    deployments = of_kind(built, "Deployment")
    autoscalers = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(built, "HorizontalPodAutoscaler").values()
    }
    assert set(autoscalers) == set(WEB_PATHS) | set(CONSUMERS)
    for name, deployment in deployments.items():
        if name in autoscalers:
            # `kubectl apply` would set a written count back, under the autoscaler's feet.
            assert "replicas" not in deployment["spec"], name
            assert 1 <= autoscalers[name]["spec"]["minReplicas"] < autoscalers[name]["spec"]["maxReplicas"], name
        else:
            assert deployment["spec"]["replicas"] >= 1, name
    for name, service in CONSUMERS.items():
        (queue_depth,) = [metric for metric in autoscalers[name]["spec"]["metrics"] if metric["type"] == "External"]
        selected = queue_depth["external"]["metric"]["selector"]["matchLabels"]
        assert selected == {"vhost": "gather", "queue": topology.CONSUMERS[service].name}


def every_deployment_and_the_broker_have_a_disruption_budget(built: tuple[Doc, ...]) -> None:
    budgets = [pdb["spec"]["selector"]["matchLabels"] for pdb in of_kind(built, "PodDisruptionBudget").values()]
    for name, deployment in of_kind(built, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in budgets), name
    (rabbitmq,) = of_kind(built, "RabbitmqCluster")
    assert {"app.kubernetes.io/name": rabbitmq} in budgets  # the labels the operator gives the broker's pods


def each_service_migrates_its_database_in_a_job(built: tuple[Doc, ...]) -> None:
    jobs = of_kind(built, "Job")
    assert {name: container(job)["command"] for name, job in jobs.items()} == {
        f"{service}-migrate": ["python", "-m", f"gather_{service}", "migrate"] for service in SERVICES
    }
    assert all(job["spec"]["template"]["spec"]["restartPolicy"] == "Never" for job in jobs.values())


def three_brokers_with_quorum_queues_and_three_database_instances(built: tuple[Doc, ...]) -> None:
    (rabbitmq,) = of_kind(built, "RabbitmqCluster").values()
    assert rabbitmq["spec"]["replicas"] == 3
    config = rabbitmq["spec"]["rabbitmq"]["additionalConfig"]
    assert "quorum_queue.continuous_membership_reconciliation.target_group_size = 3" in config
    definitions = json.loads((REPO / "deploy/rabbitmq/definitions.json").read_text())
    queues = {queue["spec"]["name"]: queue["spec"] for queue in of_kind(built, "Queue").values()}
    assert set(queues) == {queue["name"] for queue in definitions["queues"]}
    assert all(queue["type"] == "quorum" for queue in queues.values())
    (vhost,) = of_kind(built, "Vhost").values()
    assert vhost["spec"] | {"name": "gather", "defaultQueueType": "quorum"} == vhost["spec"]
    policies = [policy["spec"] for policy in of_kind(built, "Policy").values()]
    # The quorum queues' policy (leader placement) reaches every queue of Gather's.
    quorum = next(policy for policy in policies if policy["name"] == "gather-quorum")
    assert quorum["vhost"] == "gather" and quorum["applyTo"] in ("queues", "quorum_queues")
    assert all(re.search(quorum["pattern"], name) for name in queues)
    # The dead letters' policy (how long they stay, that reading them drops none) is the compose stack's.
    [dead_letters] = [policy for policy in policies if policy["name"] == "gather-dead-letters"]
    [defined] = [policy for policy in definitions["policies"] if policy["name"] == "gather-dead-letters"]
    assert (dead_letters["pattern"], dead_letters["definition"]) == (defined["pattern"], defined["definition"])

    (postgres,) = of_kind(built, "Cluster").values()
    assert postgres["spec"]["instances"] == 3
    roles = {role["name"]: role for role in postgres["spec"]["managed"]["roles"]}
    databases = {database["spec"]["name"]: database["spec"] for database in of_kind(built, "Database").values()}
    assert set(databases) == set(roles) == {f"gather_{service}" for service in SERVICES}
    for service in SERVICES:
        role = f"gather_{service}"
        assert databases[role] == {"cluster": {"name": postgres["metadata"]["name"]}, "name": role, "owner": role}
        assert roles[role]["login"] is True
        assert roles[role]["passwordSecret"] == {"name": f"gather-postgres-{service}"}
        # Only its own role may connect to a service's database, and only over TLS.
        assert f"hostssl {role} {role} all scram-sha-256" in postgres["spec"]["postgresql"]["pg_hba"]


def two_of_every_process_but_the_scheduler_and_a_pinned_image(built: tuple[Doc, ...]) -> None:
    for name, hpa in of_kind(built, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] >= 2, name
    for name, deployment in of_kind(built, "Deployment").items():
        assert deployment["spec"].get("replicas", 2) >= (1 if name == "signup-scheduler" else 2), name
        image = container(deployment)["image"]
        assert re.fullmatch(r"[^:]+/gather:[0-9][\w.-]*", image), image  # a registry's, by version


def one_of_everything_for_one_machine(built: tuple[Doc, ...]) -> None:
    (rabbitmq,) = of_kind(built, "RabbitmqCluster").values()
    (postgres,) = of_kind(built, "Cluster").values()
    assert rabbitmq["spec"]["replicas"] == 1 and postgres["spec"]["instances"] == 1
    assert all(deployment["spec"].get("replicas", 1) == 1 for deployment in of_kind(built, "Deployment").values())


#: What is checked in each overlay as built: each in both overlays, but the last three in one.
BUILT_CHECKS = [
    *(
        (overlay, check)
        for check in (
            every_built_in_kind_is_valid_for_the_kubernetes_api,
            every_procfile_process_is_a_deployment_running_its_command,
            each_web_process_is_probed_served_and_routed_on_the_one_origin,
            every_pod_runs_as_non_root_on_a_read_only_root_within_limits,
            each_process_logs_in_to_its_own_database_and_vhost_with_its_own_secrets,
            web_and_consumers_autoscale_and_the_other_workers_have_fixed_counts,
            every_deployment_and_the_broker_have_a_disruption_budget,
            each_service_migrates_its_database_in_a_job,
        )
        for overlay in OVERLAYS
    ),
    ("production", three_brokers_with_quorum_queues_and_three_database_instances),
    ("production", two_of_every_process_but_the_scheduler_and_a_pinned_image),
    ("dev", one_of_everything_for_one_machine),
]


# One test function for them all, so that a machine without a builder reports its one reason on one line.
@pytest.mark.usefixtures("schemas_read_once")
@pytest.mark.parametrize(
    ("overlay", "check"), BUILT_CHECKS, ids=[f"{overlay}-{check.__name__}" for overlay, check in BUILT_CHECKS]
)
def test_the_built_overlay(overlay: str, check: Callable[[tuple[Doc, ...]], None]) -> None:
    check(build(overlay))
