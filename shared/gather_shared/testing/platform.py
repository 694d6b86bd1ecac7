"""The whole platform as separate processes, started from the Procfile exactly as `make run` starts
them, and the HTTP calls a user makes against it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gather_shared.testing.samples import event_body
from gather_shared.testing.service import ADMIN_TOKEN, RATE_LIMITS_OFF, SECRET_KEY

REPO = Path(__file__).resolve().parents[3]
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """`preexec_fn` for every process a test or a benchmark starts: when the process that started it dies
    (pytest or `make bench` killed by a timeout), the child gets SIGTERM instead of living on as an orphan
    that holds ports, database connections and the cores the next test needs."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def procfile() -> dict[str, str]:
    """The Procfile's processes: the tests start exactly what `make run` starts."""
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


#: The Procfile's web processes, each on a port of its own.
WEB = ("pages", "events", "signup", "notifications")
#: The settings that tell every process where a web process answers: the links in messages point under
#: GATHER_PUBLIC_URL (the attendee pages), and the pages call the signup and notifications APIs.
WEB_URL_SETTINGS = {
    "GATHER_PUBLIC_URL": "pages",
    "GATHER_SIGNUP_URL": "signup",
    "GATHER_NOTIFICATIONS_URL": "notifications",
}


@dataclass
class Platform:
    """Gather's processes running in `workdir`; `urls` maps each web service to its base URL."""

    workdir: Path
    env: dict[str, str]
    database_urls: dict[str, str] | None = None  # service → URL; None: each service's SQLite under var/
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start the Procfile process `name`; `name#2` starts a second copy of it (a worker only)."""
        command = procfile()[name.split("#")[0]]
        if name in WEB:
            port = int(self.urls[name].rsplit(":", 1)[1]) if name in self.urls else free_port()
            command = re.sub(r"--bind \S+", f"--bind 127.0.0.1:{port}", command)
            self.urls[name] = f"http://127.0.0.1:{port}"
        command = command.replace("deploy/", f"{REPO}/deploy/")
        env = dict(self.env)
        if self.database_urls and name.split("-")[0] in self.database_urls:
            env["GATHER_DATABASE_URL"] = self.database_urls[name.split("-")[0]]
        argv = shlex.split(command)
        argv[0] = str(Path(sys.executable).parent / argv[0]) if argv[0] != "python" else sys.executable
        log = self.workdir / f"{name}.log"
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=env,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3  # a test needs no graceful shutdown; the next test needs the cores
        for name in list(self.processes):
            process = self.processes.pop(name)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        for name, url in self.urls.items():
            while True:
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                exited = [n for n, p in self.processes.items() if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    raise AssertionError(f"not ready: {name}; exited: {exited}")
                time.sleep(0.2)

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.logs.get(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""

    def all_logs(self) -> str:
        return "\n".join(f"===== {name}\n{self.tail(name, 200)}" for name in self.logs)

    @contextlib.contextmanager
    def running(self, names: Iterable[str] | None = None) -> Iterator[Platform]:
        """The processes `names` (every Procfile process if None) started and ready for the block; their
        logs printed if it fails; all stopped after it."""
        try:
            for name in procfile() if names is None else names:
                self.start(name)
            self.wait_ready()
            yield self
        except BaseException:
            print(self.all_logs())
            raise
        finally:
            self.stop()


def messages_to(workdir: Path, contact: str) -> list[str]:
    """The text of every email (its plain part) or SMS sent to `contact` so far, as the embedded default
    writes them: `.eml` files under var/outbox/email/ and lines of var/outbox/sms.jsonl."""
    import email
    import email.policy
    import json

    texts = []
    for path in sorted((workdir / "var/outbox/email").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if contact in str(message["To"]):
            texts.append(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    sms = workdir / "var/outbox/sms.jsonl"
    if sms.exists():
        texts += [line["body"] for line in map(json.loads, sms.read_text().splitlines()) if line["to"] == contact]
    return texts


def verify_token_sent_to(workdir: Path, contact: str) -> str | None:
    """The token of the newest verify link in a message to `contact`, if one arrived."""
    links = [re.findall(r"/verify/([\w.-]+)", text) for text in messages_to(workdir, contact)]
    found = [token for tokens in links for token in tokens]
    return found[-1] if found else None


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.2, message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; returns its value. Tests wait for outcomes, never for time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def sms_goes_now() -> dict[str, str]:
    """The setting that sends an SMS at once, whatever the hour this runs: a one-minute quiet window twelve
    hours away."""
    far = datetime.now(ZoneInfo("Europe/London")) + timedelta(hours=12)
    return {"GATHER_SMS_QUIET_HOURS": f"{far:%H:%M}-{far + timedelta(minutes=1):%H:%M}"}


def process_env(workers: int = 2) -> dict[str, str]:
    """The environment of Gather's processes in a test: none of the caller's GATHER_ settings, the tests'
    admin token and secret key, `workers` gunicorn workers per web service, and no rate limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    return env | {
        "GATHER_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATHER_SECRET_KEY": SECRET_KEY,
        "WEB_CONCURRENCY": str(workers),
        "PYTHONUNBUFFERED": "1",
        **RATE_LIMITS_OFF,
    }


@contextlib.contextmanager
def running_platform(
    workdir: Path,
    database_urls: dict[str, str] | None,
    broker_url: str | None,
    extra_env: dict[str, str] | None = None,
    copies: int = 1,
) -> Iterator[Platform]:
    """Start every Procfile process in `workdir`. `database_urls` maps service → URL (None: SQLite under
    var/; a service it does not name, too); `broker_url` None means the embedded filesystem transport.
    `copies`: how many of each worker (relay, consumer, sender, scheduler) run at once, named `name`,
    `name#2`, …; each web service runs once (with its WEB_CONCURRENCY gunicorn workers)."""
    env = process_env()
    if broker_url:
        env["GATHER_BROKER_URL"] = broker_url
    env |= extra_env or {}
    platform = Platform(workdir=workdir, env=env, database_urls=database_urls)
    # Every web process's address is known before any starts, so each process is told the others'.
    platform.urls = {name: f"http://127.0.0.1:{free_port()}" for name in WEB if name in procfile()}
    for variable, name in WEB_URL_SETTINGS.items():
        if name in platform.urls:
            env.setdefault(variable, platform.urls[name])
    names = [
        name if copy == 1 else f"{name}#{copy}"
        for name in procfile()
        for copy in range(1, (1 if name in WEB else copies) + 1)
    ]
    with platform.running(names):
        yield platform


class Client:
    """The HTTP calls a user makes, against a running Platform."""

    def __init__(self, platform: Platform) -> None:
        import requests

        self.http = requests.Session()
        self.urls = platform.urls
        self.workdir = platform.workdir

    def call(self, method: str, service: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.urls[service] + path, headers=headers, timeout=30, **kwargs)

    def organizer(self, name: str = "Mind Matters") -> dict[str, Any]:
        response = self.call(
            "POST", "events", "/v1/organizers", ADMIN_TOKEN, json={"name": name, "email": "org@example.org"}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def key_statuses(self, key: str, event_id: str) -> dict[str, int]:
        """What each API answers an organizer call with `key` about `event_id`: 200 where the service knows
        the key (and the event), 401 where it does not (yet, or any more)."""
        calls = {
            "events": ("GET", "events", "/v1/organizers/me"),
            "signup": ("GET", "signup", f"/v1/events/{event_id}/signups"),
            "notifications": ("GET", "notifications", f"/v1/notifications?event_id={event_id}"),
        }
        return {name: self.call(*call, token=key).status_code for name, call in calls.items()}

    def published_event(self, api_key: str, **overrides: Any) -> dict[str, Any]:
        response = self.call("POST", "events", "/v1/events", api_key, json=event_body(**overrides))
        assert response.status_code == 201, response.text
        response = self.call("POST", "events", f"/v1/events/{response.json()['id']}/publish", api_key)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, event_id: str, wait: bool = True, headers: dict[str, str] | None = None, **body: Any) -> Any:
        """Register; with `wait`, retry while the signup service has not yet heard of the event."""
        body = {"display_name": "Sam", "email": "sam@example.org", "channels": ["email"]} | body
        deadline = time.monotonic() + 30
        while True:
            response = self.call(
                "POST", "signup", f"/v1/events/{event_id}/signups", json=body, headers=dict(headers or {})
            )
            if not (wait and response.status_code == 404 and time.monotonic() < deadline):
                return response
            time.sleep(0.1)

    def register_verified(self, event_id: str, **body: Any) -> Any:
        """Ask for a place as `register` does; when the answer is 202 (a link went to the contact), follow
        the verify link from the message the contact received, as a person would. Returns the last answer
        (the verification's 200, with the manage token)."""
        response = self.register(event_id, **body)
        if response.status_code != 202:
            return response
        body = {"email": "sam@example.org"} | body
        token = wait_for(
            lambda: verify_token_sent_to(self.workdir, body.get("email") or body["phone"]),
            timeout=60,
            message="the verify link",
        )
        return self.call("POST", "signup", f"/v1/verifications/{token}")

    def notifications(self, **params: Any) -> list[dict[str, Any]]:
        response = self.call("GET", "notifications", "/v1/notifications", ADMIN_TOKEN, params=params | {"limit": 100})
        assert response.status_code == 200, response.text
        return response.json()["items"]
