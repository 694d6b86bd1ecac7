"""What a client and an operator see of gunicorn itself, started with deploy/gunicorn.conf.py as the Procfile
starts every web process: its own errors (414, a worker that took too long) as problem+json, an expensive
recurrence rule answered 422 long before a worker would be killed, and an access log without a token or a
short-link code. Also: a process refuses to start that would log in to SMTP over a plain connection."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gather_shared.testing import ADMIN_TOKEN, REPO, SECRET_KEY, event_body, free_port, wait_for

CONF = str(REPO / "deploy" / "gunicorn.conf.py")
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@contextlib.contextmanager
def gunicorn(workdir: Path, app: str, *options: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """gunicorn with Gather's configuration serving `app`; yields its URL and its log (stdout and stderr)."""
    port = free_port()
    settings = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    settings |= {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY, "PYTHONUNBUFFERED": "1"}
    settings |= {"WEB_CONCURRENCY": "1"} | (env or {})
    log = workdir / "gunicorn.log"
    argv = [GUNICORN, "-c", CONF, "--bind", f"127.0.0.1:{port}", *options, app]
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=workdir, env=settings, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=60, message="gunicorn to answer")
        yield url, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        requests.get(f"{url}/healthz", timeout=2)
        return True
    except requests.RequestException:
        return False


def raw(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send `request` as it is; the answer's status line, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


def assert_problem(headers: dict[str, str], body: bytes, status: int) -> None:
    assert headers["content-type"] == "application/problem+json", body
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]


SLOW_APP = """
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(60)
    start_response("404 NOT FOUND", [("Content-Type", "application/problem+json")])
    return [b'{"status": 404}']
"""


@pytest.fixture
def plain_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A WSGI app that answers 404 at once, and never in time at /slow, under Gather's gunicorn
    configuration with a worker timeout of 2 seconds."""
    (tmp_path / "plain_app.py").write_text(SLOW_APP)
    with gunicorn(tmp_path, "plain_app:app", "--pythonpath", str(tmp_path), "--timeout", "2") as served:
        yield served


def test_a_request_line_too_long_is_a_414_problem(plain_app: tuple[str, Path]) -> None:
    url, _ = plain_app
    status, headers, body = raw(url, b"GET /v1/events?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.split(" ")[1] == "414"
    assert_problem(headers, body, 414)
    assert b"aaaa" not in body  # the request is not echoed back


def test_a_worker_that_took_too_long_answers_a_500_problem(plain_app: tuple[str, Path]) -> None:
    url, log = plain_app
    status, headers, body = raw(url, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.split(" ")[1] == "500"
    assert_problem(headers, body, 500)
    assert "WORKER TIMEOUT" in log.read_text()
    # The master starts another worker, which answers.
    wait_for(lambda: _status(url) == 404, timeout=30, message="a new worker")


def _status(url: str) -> int | None:
    try:
        return requests.get(f"{url}/anything", timeout=5).status_code
    except requests.RequestException:
        return None


#: Paths whose last segment is a secret: a token of a link (verify, manage, unsubscribe) or a short code.
SECRET_PATHS = [
    "/verify/TOKEN-verify-1",
    "/manage/0b6f6c53-1c2f-4bd4-a3a6-0b4f1f8e7a10/TOKEN-manage-2",
    "/unsubscribe/TOKEN-unsubscribe-3",
    "/v1/verifications/TOKEN-verification-4",
    "/v1/unsubscribe/TOKEN-unsubscribe-5",
    "/s/CODE6",
]


def test_the_access_log_holds_no_token_and_no_short_code(plain_app: tuple[str, Path]) -> None:
    url, log = plain_app
    for path in SECRET_PATHS:
        requests.get(f"{url}{path}?x=1", headers={"Referer": f"https://gather.example{path}"}, timeout=10)
        requests.post(f"{url}{path}", timeout=10)
    text = wait_for(lambda: log.read_text() if log.read_text().count("[redacted]") >= 2 * len(SECRET_PATHS) else None)
    assert "TOKEN" not in text and "CODE6" not in text, text
    assert "/manage/0b6f6c53-1c2f-4bd4-a3a6-0b4f1f8e7a10/[redacted]" in text  # which registration stays readable


def test_a_recurrence_rule_no_date_matches_is_answered_long_before_a_worker_would_be_killed(
    tmp_path: Path,
) -> None:
    """Against the events service itself, with the production worker timeout (30 s): before the bound, two
    such requests took the service down."""
    with gunicorn(tmp_path, "gather_events.app:create_app()") as (url, _):
        organizer = requests.post(
            f"{url}/v1/organizers",
            json={"name": "Mind Matters", "email": "o@example.org"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        ).json()
        key = {"Authorization": f"Bearer {organizer['api_key']}"}
        positions = ",".join(str(n) for n in range(1, 31))
        for rule in (
            "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",
            "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1,2,3,4,5,6,7",
        ):
            response = requests.post(f"{url}/v1/events", json=event_body(recurrence=rule), headers=key, timeout=30)
            assert response.status_code == 422, response.text
            assert "recurrence" in response.json()["errors"]
        response = requests.post(
            f"{url}/v1/events", json=event_body(recurrence=f"FREQ=WEEKLY;BYSETPOS={positions}"), headers=key, timeout=30
        )
        assert response.status_code == 422


# --- SMTP ------------------------------------------------------------------------------------------------


def test_a_sender_with_an_smtp_login_over_a_plain_connection_refuses_to_start(tmp_path: Path) -> None:
    """The password would cross the network in clear text: the sender says so and stops, and the SMTP
    server never hears from it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    logins: list[Any] = []

    def authenticator(*args: Any) -> AuthResult:
        logins.append(args)
        return AuthResult(success=True)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 OK"

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
        env |= {"GATHER_ADMIN_TOKEN": ADMIN_TOKEN, "GATHER_SECRET_KEY": SECRET_KEY}
        for url in (f"smtp://gather:secret@127.0.0.1:{port}", f"smtp://gather:secret@127.0.0.1:{port}?starttls=0"):
            result = subprocess.run(
                [sys.executable, "-m", "gather_notifications", "send"],
                cwd=tmp_path,
                env=env | {"GATHER_SMTP_URL": url},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode != 0
            assert "refusing to log in to an SMTP server over a plain connection" in result.stderr
            assert "secret" not in result.stderr  # nor does it print the password
        assert logins == []
    finally:
        controller.stop()


def request_counts(metrics_page: str, route: str) -> dict[str, float]:
    """{status: requests} of `route` in a Prometheus text page."""
    counts = {}
    for family in text_string_to_metric_families(metrics_page):
        for sample in family.samples:
            if sample.name == "gather_http_request_duration_seconds_count" and sample.labels["route"] == route:
                counts[sample.labels["status"]] = sample.value
    return counts


def test_one_scrape_of_metrics_counts_the_requests_of_every_worker_by_route_never_by_id(tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {"WEB_CONCURRENCY": "2", "GATHER_METRICS_PORT": str(metrics_port)}
    with gunicorn(tmp_path, "gather_signup.app:create_app()", env=env) as (url, _):
        unknown = [str(uuid.uuid4()) for _ in range(20)]
        for event_id in unknown:
            assert requests.get(f"{url}/v1/events/{event_id}/availability", timeout=30).status_code == 404
        pages = [requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) for _ in range(3)]
        # Not on the port people reach, whoever asks.
        assert requests.get(f"{url}/metrics", timeout=30).status_code == 404

    route = "/v1/events/<uuid:event_id>/availability"
    for page in pages:
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/plain")
        assert request_counts(page.text, route) == {"404": 20}  # both workers' requests, in one scrape
        assert not any(event_id in page.text for event_id in unknown)
