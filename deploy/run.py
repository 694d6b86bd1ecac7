"""`make run`: every Gather process on this machine (the Procfile, run by honcho), then the URLs (the
attendee pages first) and the admin token once every web service answers /readyz. Ctrl-C stops everything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The attendee pages: where a person finds, joins and manages a place (printed first).
PAGES_PORT = 8000
SERVICES = {"pages": PAGES_PORT, "events": 8001, "signup": 8002, "notifications": 8003}


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
    process = subprocess.Popen([honcho, "start", "-f", "Procfile", "-d", str(ROOT)], env=env)
    try:
        deadline = time.monotonic() + 90
        waiting = dict(SERVICES)
        while waiting and process.poll() is None and time.monotonic() < deadline:
            waiting = {name: port for name, port in waiting.items() if not ready(port)}
            time.sleep(0.5)
        if waiting:
            print(f"!! not ready after 90s: {', '.join(waiting)} (see the log above)", flush=True)
        else:
            broker = env.get("GATHER_BROKER_URL", "filesystem:// (var/broker/)")
            lines = [
                f"  attendee pages http://localhost:{PAGES_PORT}   <- start here: find, join and manage a place",
                *(
                    f"  {name:<14} http://localhost:{port}   docs: http://localhost:{port}/docs"
                    for name, port in SERVICES.items()
                    if name != "pages"
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
    sys.exit(main())
