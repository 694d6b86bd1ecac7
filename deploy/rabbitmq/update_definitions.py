"""Rewrite the exchange, queues and bindings of definitions.json from the bus topology
(gather_shared.bus.topology.CONSUMERS), after a service starts consuming or binds another key:
    .venv/bin/python deploy/rabbitmq/update_definitions.py
Users, permissions and policies are written by hand; tests/test_deploy.py checks both against the topology."""

from __future__ import annotations

import json
from pathlib import Path

from gather_shared.bus import topology

DEFINITIONS = Path(__file__).resolve().parent / "definitions.json"

if __name__ == "__main__":
    definitions = json.loads(DEFINITIONS.read_text()) | topology.broker_definitions("gather")
    DEFINITIONS.write_text(json.dumps(definitions, indent=2) + "\n")
