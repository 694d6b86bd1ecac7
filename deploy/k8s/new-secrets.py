"""Print, as Kubernetes manifests, a new random value for every Secret of Gather's that no operator makes:
    python3 deploy/k8s/new-secrets.py | kubectl -n gather create -f -
once per namespace, before the first `kubectl apply -k` (`create`, not `apply`: run again, it refuses to
replace a password that the database and the broker already hold). Nothing is written to disk, and no value is
in git. The values use letters, digits, - and _ only, which the URLs of the manifests keep as they are.
The Secrets for the outside world (gather-smtp, gather-sms, gather-tls) hold accounts that only their owner
can give: docs/operations.md shows how to make them. tests/test_k8s.py checks that this makes every Secret
the manifests read, besides those."""

from __future__ import annotations

import json
import secrets

SERVICES = ("events", "signup", "notifications", "pages")


def secret(name: str, values: dict[str, str], kind: str = "Opaque") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": kind, "stringData": values}


def new_secrets() -> list[dict[str, object]]:
    def token() -> str:
        return secrets.token_urlsafe(32)

    made = [secret("gather-app", {"secret-key": token(), "admin-token": token()})]
    for service in SERVICES:
        # CloudNativePG takes a role's password from a basic-auth Secret whose username is the role's name.
        database = {"username": f"gather_{service}", "password": token()}
        made.append(secret(f"gather-postgres-{service}", database, "kubernetes.io/basic-auth"))
        made.append(secret(f"gather-rabbitmq-{service}", {"username": service, "password": token()}))
    return made


if __name__ == "__main__":
    # JSON is YAML: `kubectl create -f -` reads a List of them.
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": new_secrets()}, indent=2))
