"""Settings, read from the environment. The names are fixed by the contract; one place reads them all."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

VAR_DIR = Path("var")  # relative to the working directory, like the contract's defaults


class SettingsError(ValueError):
    """A setting a process cannot run with: the process stops at start with this one line."""


@dataclass(frozen=True)
class Settings:
    service: str
    broker_url: str
    database_url: str
    admin_token: str
    smtp_url: str | None
    sms_provider: str
    reminder_offsets: str
    sms_quiet_hours: str
    retention_days: int
    signup_url: str
    notifications_url: str
    public_url: str
    secret_key: str
    email_from: str
    verify_minutes: int
    # The Twilio-compatible SMS provider (GATHER_SMS_PROVIDER=twilio).
    sms_base_url: str = "https://api.twilio.com"
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = None
    # The attendee pages' calm line for someone who needs help now, on pages about no event or about an
    # event without support resources of its own: the operator's words and link (unset: general words).
    help_text: str | None = None
    help_url: str | None = None

    @classmethod
    def from_env(cls, service: str) -> Settings:
        env = os.environ
        broker_url = env.get("GATHER_BROKER_URL") or "filesystem://"
        database_url = (env.get("GATHER_DATABASE_URL") or "sqlite:///var/{service}.db").replace("{service}", service)
        return cls(
            service=service,
            broker_url=broker_url,
            database_url=database_url,
            admin_token=env.get("GATHER_ADMIN_TOKEN") or secret_from_file("admin-token"),
            smtp_url=env.get("GATHER_SMTP_URL") or None,
            sms_provider=env.get("GATHER_SMS_PROVIDER") or "file",
            reminder_offsets=env.get("GATHER_REMINDER_OFFSETS") or "24h,1h",
            sms_quiet_hours=env.get("GATHER_SMS_QUIET_HOURS") or "21:00-08:00",
            retention_days=int(env.get("GATHER_RETENTION_DAYS") or 30),
            signup_url=(env.get("GATHER_SIGNUP_URL") or "http://localhost:8002").rstrip("/"),
            notifications_url=(env.get("GATHER_NOTIFICATIONS_URL") or "http://localhost:8003").rstrip("/"),
            public_url=(env.get("GATHER_PUBLIC_URL") or "http://localhost:8000").rstrip("/"),
            secret_key=env.get("GATHER_SECRET_KEY") or embedded_secret_key(database_url, broker_url),
            email_from=email_from(env.get("GATHER_EMAIL_FROM") or "Gather <no-reply@localhost>"),
            verify_minutes=int(env.get("GATHER_VERIFY_MINUTES") or 30),
            sms_base_url=(env.get("GATHER_SMS_BASE_URL") or "https://api.twilio.com").rstrip("/"),
            sms_account_sid=env.get("GATHER_SMS_ACCOUNT_SID") or None,
            sms_auth_token=env.get("GATHER_SMS_AUTH_TOKEN") or None,
            sms_from=env.get("GATHER_SMS_FROM") or None,
            help_text=env.get("GATHER_HELP_TEXT") or None,
            help_url=env.get("GATHER_HELP_URL") or None,
        )


def is_embedded(database_url: str, broker_url: str) -> bool:
    """The embedded default: SQLite and the filesystem broker, so every process runs on this machine in
    this working directory and shares its `var/`. Anything else is a deployment, possibly over several
    machines or containers, each with a `var/` of its own."""
    return database_url.startswith("sqlite") and broker_url.startswith("filesystem://")


def embedded_secret_key(database_url: str, broker_url: str) -> str:
    """The secret key when GATHER_SECRET_KEY is unset: shared through `var/secret-key` on the embedded
    default. A deployment must set it: a key drawn by each container would differ between the service that
    signs a link and the one that checks it, and would change at every restart, breaking every link sent."""
    if not is_embedded(database_url, broker_url):
        raise SettingsError(
            "GATHER_SECRET_KEY must be set outside the embedded default (SQLite and filesystem://): the same "
            "random value in every process, e.g. from python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return secret_from_file("secret-key")


def email_from(value: str) -> str:
    """GATHER_EMAIL_FROM, checked once at start: a line break would end the From header and start another."""
    if "@" not in parseaddr(value)[1] or any(ch in value for ch in "\r\n"):
        raise SettingsError(f"GATHER_EMAIL_FROM: {value!r} is not an address like 'Gather <no-reply@example.org>'")
    return value


def secret_from_file(name: str) -> str:
    """The embedded default of a secret: one random value shared by every process through `var/<name>`,
    readable by its owner only."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Write it whole under a private name, then link it into place: when several processes start at
        # once, the first link wins and no process can read a half-written (empty) secret. The file is
        # created 0600, whatever the umask, before a byte is written.
        draft = path.with_name(f".{name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
