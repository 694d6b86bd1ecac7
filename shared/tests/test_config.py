"""Settings a process starts with: the contract's defaults, the secret key each deployment must set, and
the embedded default's secrets shared through files only their owner can read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gather_shared.config import Settings, SettingsError
from gather_shared.testing import REPO

#: Outside the embedded default (SQLite and filesystem://). The servers need not exist: settings are read
#: before anything connects.
DEPLOYMENTS = {
    "PostgreSQL": {"GATHER_DATABASE_URL": "postgresql://gather@127.0.0.1:1/gather_{service}"},
    "RabbitMQ": {"GATHER_BROKER_URL": "amqp://gather@127.0.0.1:1/gather"},
}
SIGNUP_WEB = [
    str(Path(sys.executable).parent / "gunicorn"),
    "-c",
    str(REPO / "deploy/gunicorn.conf.py"),
    "--bind",
    "127.0.0.1:0",
    "gather_signup.app:create_app()",
]
SIGNUP_CONSUMER = [sys.executable, "-m", "gather_signup", "consume"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A fresh working directory and no GATHER_* setting: what a new machine starts with."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("GATHER_") and not name.startswith("GATHER_TEST_") and name != "GATHER_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    return {k: v for k, v in os.environ.items() if not k.startswith("GATHER_")}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The timeout only guards the suite: a process that refuses to start stops by itself.
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_contract_defaults(clean_env: dict[str, str]) -> None:
    settings = Settings.from_env("signup")
    assert settings.public_url == "http://localhost:8000"
    assert settings.email_from == "Gather <no-reply@localhost>"
    assert settings.verify_minutes == 30
    assert len(settings.secret_key) >= 32


def test_each_setting_is_read_from_its_variable(clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATHER_PUBLIC_URL", "https://gather.example.org/")
    monkeypatch.setenv("GATHER_SECRET_KEY", "a-secret-from-the-operator")
    monkeypatch.setenv("GATHER_EMAIL_FROM", "Mind Matters <hello@mind.example.org>")
    monkeypatch.setenv("GATHER_VERIFY_MINUTES", "45")
    settings = Settings.from_env("signup")
    assert settings.public_url == "https://gather.example.org"
    assert settings.secret_key == "a-secret-from-the-operator"
    assert settings.email_from == "Mind Matters <hello@mind.example.org>"
    assert settings.verify_minutes == 45
    assert not Path("var/secret-key").exists()


@pytest.mark.parametrize("value", ["no-reply", "Gather <no-reply@example.org>\r\nBcc: everyone@example.org"])
def test_a_sender_address_that_would_break_every_email_is_refused(
    clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GATHER_EMAIL_FROM", value)
    with pytest.raises(SettingsError, match="GATHER_EMAIL_FROM"):
        Settings.from_env("notifications")


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
@pytest.mark.parametrize("argv", [SIGNUP_WEB, SIGNUP_CONSUMER], ids=["web", "consumer"])
def test_outside_the_embedded_default_a_process_without_a_secret_key_refuses_to_start_with_one_line(
    clean_env: dict[str, str], tmp_path: Path, deployment: str, argv: list[str]
) -> None:
    result = run(argv, clean_env | DEPLOYMENTS[deployment], tmp_path)

    assert result.returncode != 0
    refusals = [line for line in result.stderr.splitlines() if "GATHER_SECRET_KEY must be set" in line]
    assert refusals and all(line == refusals[0] for line in refusals), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var/secret-key").exists()


def test_with_a_secret_key_a_deployment_reads_its_settings(
    clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (DEPLOYMENTS["PostgreSQL"] | DEPLOYMENTS["RabbitMQ"]).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="GATHER_SECRET_KEY"):
        Settings.from_env("signup")
    monkeypatch.setenv("GATHER_SECRET_KEY", "from-the-vault")
    assert Settings.from_env("signup").secret_key == "from-the-vault"


def test_the_embedded_default_shares_one_secret_key_between_processes_readable_by_its_owner_only(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    # Twelve processes starting at once all end up with the same key, and none with a half-written one.
    print_key = "from gather_shared.config import Settings; print(Settings.from_env('signup').secret_key)"
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: run([sys.executable, "-c", print_key], clean_env, tmp_path), range(12)))

    keys = {result.stdout.strip() for result in results}
    assert [result.returncode for result in results] == [0] * 12, [r.stderr for r in results]
    assert keys == {(tmp_path / "var/secret-key").read_text().strip()}
    assert len(keys.pop()) >= 32
    assert stat.S_IMODE((tmp_path / "var/secret-key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var/admin-token").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["admin-token", "secret-key"]  # no draft left
