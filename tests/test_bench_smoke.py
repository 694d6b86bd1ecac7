"""`make bench` keeps working: the whole harness, at tiny sizes, on the real servers. It checks that every
benchmark ran and reported, never how fast anything was (no timed assertions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gather_shared.testing import REPO

pytestmark = [pytest.mark.services, pytest.mark.slow]

BENCHMARKS = {
    "idle platform CPU",
    "signup rush",
    "signup rush, downstream paused",
    "signup rush, 4 events",
    "downstream CPU per registration",
    "message pipeline",
    "registration to email p99",
    "reminder fan-out",
    "public listing",
}


def test_the_benchmark_suite_runs_end_to_end_and_writes_every_figure(
    tmp_path: Path, pg_server_url: str, clean_amqp_url: str
) -> None:
    output = tmp_path / "results.json"
    env = os.environ | {"GATHER_TEST_DATABASE_URL": pg_server_url, "GATHER_TEST_AMQP_URL": clean_amqp_url}
    command = [sys.executable, "-m", "bench", "--tiny", "--workers", "2", "--output", str(output)]
    finished = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    assert "benchmark" in finished.stdout and "ratio" in finished.stdout  # the table was printed
    results = {r["benchmark"]: r for r in json.loads(output.read_text())["results"]}
    assert BENCHMARKS <= set(results)
    for name in BENCHMARKS:
        assert results[name]["figure"] is not None or results[name]["unavailable"], results[name]
    for rush in ("signup rush", "signup rush, downstream paused", "signup rush, 4 events"):
        assert results[rush]["details"]["exact"], results[rush]  # 50 confirmed per event, or all if fewer came
    assert any(name.startswith("memory: ") for name in results)


def test_the_benchmarks_say_so_in_one_line_when_the_servers_are_unreachable(tmp_path: Path) -> None:
    env = os.environ | {
        "GATHER_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres",
        "GATHER_TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1//",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--output", str(tmp_path / "r.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [finished.stderr.strip()]
    assert "cannot run" in finished.stderr
    assert not (tmp_path / "r.json").exists()
