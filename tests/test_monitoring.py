"""The alert rules and the Grafana dashboard in deploy/monitoring/ read only metrics that Gather's processes
export (gather_shared.metrics): a renamed metric must not leave an alert that can never fire."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from gather_shared import metrics
from gather_shared.testing import REPO, free_port, wait_for

MONITORING = REPO / "deploy" / "monitoring"
SAMPLE_SUFFIXES = {Counter: ("_total",), Gauge: ("",), Histogram: ("_bucket", "_count", "_sum")}


def exported() -> dict[str, str]:
    """{sample name: metric name}: the names Gather's metrics appear under in a scrape."""
    names = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names |= {family.name + suffix: family.name for suffix in SAMPLE_SUFFIXES[type(metric)]}
    return names


def read(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\bgather_[a-z_]+", expr)}


def test_every_alert_rule_has_a_name_a_summary_and_reads_exported_metrics() -> None:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]

    assert {"GatherOutboxStale", "GatherDeadLettersGrowing", "GatherRemindersLate"} <= {r["alert"] for r in rules}
    assert all(rule["annotations"]["summary"] and rule["labels"]["severity"] for rule in rules)
    used = read([rule["expr"] for rule in rules])
    assert used and used <= set(exported())


def test_every_dashboard_panel_reads_exported_metrics() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())

    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) == len(dashboard["panels"])
    used = read(expressions)
    assert used <= set(exported())
    assert {exported()[name] for name in used} == set(exported().values())  # every metric has a panel


def test_a_worker_serves_its_metrics_on_the_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")} | {"GATHER_METRICS_PORT": str(port)}
    relay = subprocess.Popen([sys.executable, "-m", "gather_events", "relay"], cwd=tmp_path, env=env)
    try:

        def scraped() -> str | None:
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                return None

        # The relay found its outbox empty: nothing has waited.
        page = wait_for(lambda: (text := scraped()) and "gather_outbox_oldest_seconds 0.0" in text and text)
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    assert "gather_messages_total" in page
