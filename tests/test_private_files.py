"""Files holding secrets or personal data are readable by their owner only: every process of `make run`,
on the embedded default, leaves nothing under var/ that another user of the machine could read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gather_shared.testing import Client, Platform, wait_for
from gather_shared.testing.platform import sms_goes_now

pytestmark = pytest.mark.slow


@pytest.fixture
def platform_drawing_its_own_secrets(tmp_path: Path) -> Iterator[Platform]:
    """The embedded platform as a person starts it: no admin token nor secret key given, so the processes
    draw both into var/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}
    env |= sms_goes_now() | {"PYTHONUNBUFFERED": "1"}
    with Platform(workdir=tmp_path, env=env).running() as platform:
        yield platform


def test_nothing_under_var_is_readable_by_anyone_but_its_owner(platform_drawing_its_own_secrets: Platform) -> None:
    platform = platform_drawing_its_own_secrets
    var = platform.workdir / "var"
    client = Client(platform)
    admin_token = (var / "admin-token").read_text().strip()
    response = client.call(
        "POST", "events", "/v1/organizers", admin_token, json={"name": "M", "email": "m@example.org"}
    )
    assert response.status_code == 201, response.text
    event = client.published_event(response.json()["api_key"], title="Anxiety support group")
    response = client.register(
        event["id"], display_name="Robin", email="robin@example.org", phone="+447911123456", channels=["email", "sms"]
    )
    assert response.status_code < 300, response.text
    wait_for(lambda: list((var / "outbox/email").glob("*.eml")), message="an email written to var/outbox/email")
    wait_for(lambda: (var / "outbox/sms.jsonl").exists(), message="an SMS written to var/outbox/sms.jsonl")

    paths = sorted(var.rglob("*"))
    names = {path.name for path in paths}
    for expected in ("admin-token", "secret-key", "events.db", "signup.db", "notifications.db", "sms.jsonl"):
        assert expected in names  # so that the check below covers each kind of file the issue names
    assert {"events.db-wal", "signup.db-wal", "notifications.db-wal", "broker"} <= names
    readable = {
        str(path.relative_to(var)): oct(stat.S_IMODE(path.lstat().st_mode))
        for path in [var, *paths]
        if stat.S_IMODE(path.lstat().st_mode) & 0o077
    }
    assert readable == {}
