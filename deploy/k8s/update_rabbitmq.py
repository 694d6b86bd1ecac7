"""Write base/rabbitmq-definitions.yaml from deploy/rabbitmq/definitions.json, after that file changes:
    .venv/bin/python deploy/k8s/update_rabbitmq.py
On Kubernetes the broker is not booted from a definitions file (whose passwords entrypoint.sh fills in): the
Messaging Topology Operator creates the same vhost, users, permissions, policies, exchange, queues and bindings
from these resources, and keeps them so. tests/test_k8s.py fails while the file is out of date."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFINITIONS = HERE.parent / "rabbitmq" / "definitions.json"
OUTPUT = HERE / "base" / "rabbitmq-definitions.yaml"
CLUSTER = {"name": "gather-rabbitmq"}  # the RabbitmqCluster of base/rabbitmq.yaml
HEADER = "# Written by deploy/k8s/update_rabbitmq.py from deploy/rabbitmq/definitions.json: edit those, not this.\n"


def k8s_name(*parts: str) -> str:
    """A resource name from RabbitMQ names: `gather.signup.retry.1s` -> `gather-signup-retry-1s`."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rabbitmq.com/v1beta1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {**spec, "rabbitmqClusterReference": CLUSTER},
    }


def resources(definitions: dict[str, Any]) -> list[dict[str, Any]]:
    # definitions.json's administrator is compose's management login; the cluster operator makes its own (the
    # Secret gather-rabbitmq-default-user), which the topology operator uses.
    services = [user["name"] for user in definitions["users"] if "administrator" not in user["tags"]]
    # Every queue is a quorum queue, also one declared without a type; deleting this resource must never
    # delete the vhost and every message in it.
    out = [resource("Vhost", "gather", {"name": "gather", "defaultQueueType": "quorum", "deletionPolicy": "retain"})]
    for name in services:
        # The username and password come from the Secret gather-rabbitmq-<service>, which the service reads too.
        credentials = {"name": f"gather-rabbitmq-{name}"}
        out.append(resource("User", f"gather-{name}", {"tags": [], "importCredentialsSecret": credentials}))
    for kind, section, keys in (
        ("Permission", "permissions", ("configure", "write", "read")),
        ("TopicPermission", "topic_permissions", ("exchange", "write", "read")),
    ):
        for p in definitions[section]:
            if p["user"] in services:
                spec = {"vhost": p["vhost"], "userReference": {"name": f"gather-{p['user']}"}}
                out.append(resource(kind, f"gather-{p['user']}", {**spec, "permissions": {k: p[k] for k in keys}}))
    for p in definitions["policies"]:
        spec = {key: p[key] for key in ("name", "vhost", "pattern", "priority", "definition")}
        out.append(resource("Policy", p["name"], {**spec, "applyTo": p["apply-to"]}))
    for e in definitions["exchanges"]:
        spec = {key: e[key] for key in ("name", "vhost", "type", "durable")}
        out.append(resource("Exchange", k8s_name(e["name"]), {**spec, "autoDelete": e["auto_delete"]}))
    for q in definitions["queues"]:
        arguments = dict(q["arguments"])
        spec = {
            "name": q["name"],
            "vhost": q["vhost"],
            "type": arguments.pop("x-queue-type"),  # the operator declares the type from `type`
            "durable": q["durable"],
            "autoDelete": q["auto_delete"],
            "arguments": arguments,
            "deletionPolicy": "retain",  # the operator's default deletes the queue, and its messages, with it
        }
        out.append(resource("Queue", k8s_name(q["name"]), spec))
    for b in definitions["bindings"]:
        spec = {
            "vhost": b["vhost"],
            "source": b["source"],
            "destination": b["destination"],
            "destinationType": b["destination_type"],
            "routingKey": b["routing_key"],
        }
        out.append(resource("Binding", k8s_name(b["destination"], b["routing_key"].replace("#", "all")), spec))
    return out


def render() -> str:
    text: str = yaml.safe_dump_all(resources(json.loads(DEFINITIONS.read_text())), sort_keys=False, width=120)
    return HEADER + text


if __name__ == "__main__":
    OUTPUT.write_text(render())
