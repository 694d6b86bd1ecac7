"""A 3-node RabbitMQ cluster on this machine, from the installed `rabbitmq-server`, for the tests that stop
nodes under load (tests/test_cluster.py; the `rabbit_cluster` fixture of plugin.py).

Each node has its own name, ports (AMQP 5681-5683, inter-node 25681-25683) and data under one temporary
folder owned by the `rabbitmq` user, which the server scripts switch to (so all nodes share that user's
Erlang cookie). Nodes 2 and 3 join node 1 with `rabbitmqctl join_cluster`. The node already running on
this machine (`rabbit@localhost`, 5672) is never touched: every command names its node.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gather_shared.testing.tiers import REQUIRE

FIRST_AMQP_PORT = 5681
FIRST_DIST_PORT = 25681
SIZE = 3
#: A node boots in 10-20 s on two busy cores; three boot at once.
BOOT_TIMEOUT_SECONDS = 120
#: The whole cluster goes in this long, whatever happens to the test.
STOP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Node:
    index: int
    home: Path

    @property
    def name(self) -> str:
        return f"gather-test-{self.index}@localhost"

    @property
    def port(self) -> int:
        return FIRST_AMQP_PORT + self.index - 1

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    def env(self) -> dict[str, str]:
        return os.environ | {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(FIRST_DIST_PORT + self.index - 1),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            # Without it every node would start the management plugin, all on port 15672.
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            # The machine's /etc/rabbitmq/rabbitmq.conf names the port of the node already running.
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
        }


class RabbitCluster:
    """Three clustered nodes; `url` lists them all in kombu's failover form (`;`-separated)."""

    def __init__(self, base: Path) -> None:
        self.nodes = [Node(i, base / f"node{i}") for i in range(1, SIZE + 1)]
        self.url = ";".join(node.url for node in self.nodes)

    def prepare(self) -> None:
        rabbitmq = pwd.getpwnam("rabbitmq")
        for node in self.nodes:
            node.home.mkdir(parents=True)
            (node.home / "enabled_plugins").write_text("[].\n")
            (node.home / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{node.port}\n")
        for path in [self.nodes[0].home.parent, *self.nodes[0].home.parent.rglob("*")]:
            os.chown(path, rabbitmq.pw_uid, rabbitmq.pw_gid)

    def stop_app(self, node: Node) -> None:
        """Stop RabbitMQ on `node` (its Erlang VM stays up): it closes its clients' connections and
        leaves the queues' majority to the other two."""
        self.ctl(node, "stop_app")

    def start_app(self, node: Node) -> None:
        """Start RabbitMQ on `node` again (it rejoins its cluster) and wait until it takes connections."""
        self.ctl(node, "start_app")
        self.wait_up(node)

    def wait_up(self, node: Node) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
        while not _answers(node.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} did not start in {BOOT_TIMEOUT_SECONDS}s; see {node.home}/log")
            time.sleep(0.3)

    def kill(self, node: Node) -> None:
        """Crash `node`: SIGKILL, no goodbye to its clients or to the other nodes."""
        pid = _pid(node)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, STOP_TIMEOUT_SECONDS)
        node.pid_file.unlink(missing_ok=True)

    def stop_all(self) -> None:
        """SIGTERM (a clean stop) to every node still running, SIGKILL to any that lingers."""
        pids = [pid for pid in map(_pid, self.nodes) if pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for pid in pids:
            if not _wait_gone(pid, max(0.1, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def ctl(self, node: Node, *args: str) -> str:
        """rabbitmqctl against `node` (never the machine's own node)."""
        result = subprocess.run(
            ["rabbitmqctl", "-q", "-n", node.name, *args], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def form(self) -> None:
        """Boot all three at once, then join 2, then 3, to 1."""
        for node in self.nodes:
            subprocess.run(["rabbitmq-server", "-detached"], env=node.env(), check=True, capture_output=True)
        for node in self.nodes:
            self.wait_up(node)
        # One after the other, as RabbitMQ's clustering guide does: two nodes joining at once once failed to
        # start their application again (mnesia's schema merge; seen in CI).
        for node in self.nodes[1:]:
            self._join_first(node)

    def _join_first(self, node: Node) -> None:
        self.stop_app(node)
        self.ctl(node, "join_cluster", self.nodes[0].name)
        self.start_app(node)

    def queues(self, via: Node) -> dict[str, dict[str, object]]:
        """Every queue, asked of node `via`: its type, leader, members, the members online, and how many
        consumers it has."""
        columns = ("name", "type", "leader", "members", "online", "consumers")
        out = self.ctl(via, "list_queues", *columns, "--formatter", "json")
        return {q["name"]: q for q in json.loads(out)}

    def node_named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _pid(node: Node) -> int | None:
    try:
        return int(node.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


#: Why the cluster tests were skipped, for pytest's summary.
_skipped: set[str] = set()


def skipped() -> list[str]:
    return [f"gather: {reason}" for reason in sorted(_skipped)]


def why_not() -> str | None:
    """Why this machine cannot run the cluster (None: it can)."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed"
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "there is no rabbitmq user to run the nodes"
    if os.geteuid() != 0:
        return "starting rabbitmq-server as the rabbitmq user needs root"
    busy = [port for port in range(FIRST_AMQP_PORT, FIRST_AMQP_PORT + SIZE) if _answers(port)]
    if busy:
        # Perhaps nodes left by a test run that was killed: `rabbitmqctl -n gather-test-1@localhost stop`.
        return f"ports {busy} are taken already (by nodes gather-test-N@localhost of an earlier run?)"
    return None


@contextlib.contextmanager
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A formed 3-node cluster for the block; every node stopped and its data deleted after it, even when
    the block fails. Skips the test (fails it, with GATHER_REQUIRE_SERVICES=1) on a machine that cannot."""
    reason = why_not()
    if reason is not None:
        message = f"3-node RabbitMQ cluster tier skipped: {reason}"
        if REQUIRE:
            pytest.fail(f"GATHER_REQUIRE_SERVICES=1 but {message}", pytrace=False)
        _skipped.add(message)
        pytest.skip(message)
    # Not under pytest's tmp_path: its folders are private to the user running the tests.
    base = Path(tempfile.mkdtemp(prefix="gather-rabbit-cluster-"))
    cluster = RabbitCluster(base)
    try:
        cluster.prepare()
        cluster.form()
        yield cluster
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)
