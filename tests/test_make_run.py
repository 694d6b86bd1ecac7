"""`make run` (deploy/run.py) keeps the platform up: a worker that crashes is started again, the output
says so, and its work resumes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gather_shared.testing import REPO, Client, Platform, free_port, messages_to, wait_for
from gather_shared.testing.platform import WEB, die_with_parent, process_env

pytestmark = pytest.mark.slow

AT_ONCE = {"kind": "workshop", "verification": "none", "capacity": None}


def our_processes(workdir: Path) -> dict[int, str]:
    """pid -> command line of every process running in `workdir` (what run.py started there)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(proc / "cwd")) == workdir:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


@dataclass
class MakeRun:
    platform: Platform
    output: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.output.read_text()

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what the terminal sends to run.py and honcho
        return self.process.wait(timeout=30)


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    """deploy/run.py as `make run` starts it, from a copy of the repository's Procfile and deploy/ in
    tmp_path (so its var/ is the test's own), with the web processes on free ports."""
    shutil.copytree(REPO / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("k8s", "__pycache__"))
    urls = {}
    lines = []
    for line in (REPO / "Procfile").read_text().splitlines():
        name = line.split(":", 1)[0]
        if name in WEB:
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            line = re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", line)
        lines.append(line)
    (tmp_path / "Procfile").write_text("\n".join(lines) + "\n")
    output = tmp_path / "make-run.log"
    env = process_env() | {"GATHER_SIGNUP_URL": urls["signup"], "GATHER_PUBLIC_URL": urls["pages"]}
    env["GATHER_NOTIFICATIONS_URL"] = urls["notifications"]
    run = subprocess.Popen(
        [sys.executable, str(tmp_path / "deploy/run.py")],
        cwd=tmp_path,
        env=env,
        stdout=open(output, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        wait_for(lambda: "Gather is running." in output.read_text(), timeout=120, message="make run to be ready")
        yield MakeRun(Platform(workdir=tmp_path, env=env, urls=urls), output, run)
    except BaseException:
        print(output.read_text())
        raise
    finally:
        try:
            if run.poll() is None:
                MakeRun(Platform(workdir=tmp_path, env=env), output, run).ctrl_c()
        finally:
            for pid in our_processes(tmp_path):  # whatever outlived it (none should)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_worker_killed_under_make_run_is_restarted_and_its_work_resumes(make_run: MakeRun) -> None:
    workdir = make_run.platform.workdir
    client = Client(make_run.platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    assert client.register(event["id"], email="before@example.org").status_code == 201
    wait_for(lambda: messages_to(workdir, "before@example.org"), message="the first confirmation")

    [sender] = [
        pid
        for pid, command in our_processes(workdir).items()
        if "gather_notifications send" in command and "restart-on-exit" not in command
    ]
    os.kill(sender, signal.SIGKILL)
    wait_for(lambda: "killed by SIGKILL; restarting it" in make_run.log(), message="run.py to say it restarts it")

    assert client.register(event["id"], email="after@example.org").status_code == 201
    wait_for(lambda: messages_to(workdir, "after@example.org"), message="the confirmation after the crash")
    assert "not ready" not in make_run.log()
    assert sender not in our_processes(workdir)

    # Ctrl-C still stops everything, each process by itself (honcho kills none, none dies of the signal).
    client.http.close()  # a kept-alive connection holds a gunicorn worker until its graceful timeout
    assert make_run.ctrl_c() == 0
    assert our_processes(workdir) == {}
    stopped = re.findall(r"\| (\S+) stopped \(rc=(-?\d+)\)", make_run.log())
    assert stopped, make_run.log()
    assert [(name, rc) for name, rc in stopped if rc != "0"] == [], make_run.log()[-6000:]
