"""`make run`: every Gather process on this machine (the Procfile, run by honcho), then the URLs (the
attendee pages first) and the admin token once every web service answers /readyz. Ctrl-C stops everything.

A process that exits on its own (a crash, an out-of-memory kill) is started again, after a pause that
grows while it keeps failing, and a line in the log says so, as docker compose (`restart:`) and
Kubernetes do: honcho alone stops the whole platform when one of its processes exits. Each Procfile
command runs under `python deploy/run.py restart-on-exit <command>` (`keep_running`) for that."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
#: The attendee pages: where a person finds, joins and manages a place (printed first).
PAGES = "pages"
#: A process that crashes again and again waits longer each time, up to this; one that ran this long
#: before it crashed is started again at once (after RESTART_FIRST_DELAY_SECONDS).
RESTART_MAX_DELAY_SECONDS = 30.0
RESTART_FIRST_DELAY_SECONDS = 1.0


def web_ports(procfile: Path) -> dict[str, int]:
    """Each web process's port, from its `--bind` in the Procfile (one place for them)."""
    ports = {}
    for name, command in procfile_entries(procfile):
        match = re.search(r"--bind \S+:(\d+)", command)
        if match:
            ports[name] = int(match.group(1))
    return ports


def procfile_entries(procfile: Path) -> list[tuple[str, str]]:
    entries = []
    for line in procfile.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


def restarting_procfile(procfile: Path, folder: Path) -> Path:
    """A copy of `procfile` (in `folder`) in which each command runs under `keep_running`."""
    me = shlex.quote(str(Path(__file__).resolve()))
    lines = [
        f"{name}: exec {shlex.quote(sys.executable)} {me} restart-on-exit {command}"
        for name, command in procfile_entries(procfile)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Procfile.restarting"
    path.write_text("\n".join(lines) + "\n")
    return path


def keep_running(argv: list[str]) -> int:
    """Run `argv`; start it again whenever it exits, until this process is asked to stop (honcho sends
    SIGTERM to the whole process group on Ctrl-C, and SIGKILL to it if that is not enough). Returns the
    exit code of the run it stopped (0 between runs)."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        # The child is in this process group: it got the same signal, and stops by itself. (Sent again,
        # it would find Python's default handlers back while it exits, and die of it.)
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_FIRST_DELAY_SECONDS
    while True:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        code = child.wait()
        if stopping:
            return 128 - code if code < 0 else code  # killed by a signal: the shell's way to say which
        if time.monotonic() - started >= RESTART_MAX_DELAY_SECONDS:
            delay = RESTART_FIRST_DELAY_SECONDS  # it had been running fine: this is a new failure
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        print(f"!! {how}; restarting it in {delay:.0f}s", flush=True)
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return 0
        delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "shared"))
    from gather_shared.config import secret_from_file
    from gather_shared.service import keep_files_private

    keep_files_private()  # honcho and every process it starts inherit the umask
    env = os.environ.copy()
    env.setdefault("GATHER_ADMIN_TOKEN", secret_from_file("admin-token"))
    # The attendee pages (on this machine) pass each browser's address on to signup and notifications, whose
    # per-address rate limits must count people rather than the pages; every process here listens on
    # 127.0.0.1 only, so nothing else can claim an address.
    env.setdefault("GATHER_TRUSTED_PROXIES", "127.0.0.1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    honcho = shutil.which("honcho", path=env["PATH"])
    procfile = restarting_procfile(PROCFILE, ROOT / "var")
    process = subprocess.Popen([honcho, "start", "-f", str(procfile), "-d", str(ROOT)], env=env)
    services = web_ports(PROCFILE)
    try:
        deadline = time.monotonic() + 90
        waiting = dict(services)
        while waiting and process.poll() is None and time.monotonic() < deadline:
            waiting = {name: port for name, port in waiting.items() if not ready(port)}
            time.sleep(0.5)
        if process.poll() is not None:
            print("!! stopped before every service was ready (see the log above)", flush=True)
        elif waiting:
            print(f"!! not ready after 90s: {', '.join(waiting)} (see the log above)", flush=True)
        else:
            broker = env.get("GATHER_BROKER_URL", "filesystem:// (var/broker/)")
            lines = [
                f"  attendee pages http://localhost:{services[PAGES]}   <- start here: find, join and manage a place",
                *(
                    f"  {name:<14} http://localhost:{port}   docs: http://localhost:{port}/docs"
                    for name, port in services.items()
                    if name != PAGES
                ),
            ]
            print(
                "\n".join(
                    [
                        "",
                        "=" * 78,
                        "Gather is running.",
                        *lines,
                        f"  admin token    {env['GATHER_ADMIN_TOKEN']}",
                        f"  broker         {broker}",
                        "  emails         var/outbox/email/*.eml     SMS: var/outbox/sms.jsonl",
                        "A process that crashes is started again (its log says `restarting`).",
                        "Press Ctrl-C to stop.",
                        "=" * 78,
                        "",
                    ]
                ),
                flush=True,
            )
        return process.wait()
    except KeyboardInterrupt:
        # honcho got the same Ctrl-C from the terminal and is stopping its processes: wait for it.
        process.wait()
        return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["restart-on-exit"]:
        sys.exit(keep_running(sys.argv[2:]))
    sys.exit(main())
