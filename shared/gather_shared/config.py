"""Settings, read from the environment. The names are fixed by the contract; one place reads them all."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

VAR_DIR = Path("var")  # relative to the working directory, like the contract's defaults


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
    # The Twilio-compatible SMS provider (GATHER_SMS_PROVIDER=twilio).
    sms_base_url: str = "https://api.twilio.com"
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = None

    @classmethod
    def from_env(cls, service: str) -> Settings:
        env = os.environ
        return cls(
            service=service,
            broker_url=env.get("GATHER_BROKER_URL") or "filesystem://",
            database_url=(env.get("GATHER_DATABASE_URL") or "sqlite:///var/{service}.db").replace("{service}", service),
            admin_token=env.get("GATHER_ADMIN_TOKEN") or admin_token_from_file(),
            smtp_url=env.get("GATHER_SMTP_URL") or None,
            sms_provider=env.get("GATHER_SMS_PROVIDER") or "file",
            reminder_offsets=env.get("GATHER_REMINDER_OFFSETS") or "24h,1h",
            sms_quiet_hours=env.get("GATHER_SMS_QUIET_HOURS") or "21:00-08:00",
            retention_days=int(env.get("GATHER_RETENTION_DAYS") or 30),
            signup_url=(env.get("GATHER_SIGNUP_URL") or "http://localhost:8002").rstrip("/"),
            notifications_url=(env.get("GATHER_NOTIFICATIONS_URL") or "http://localhost:8003").rstrip("/"),
            sms_base_url=(env.get("GATHER_SMS_BASE_URL") or "https://api.twilio.com").rstrip("/"),
            sms_account_sid=env.get("GATHER_SMS_ACCOUNT_SID") or None,
            sms_auth_token=env.get("GATHER_SMS_AUTH_TOKEN") or None,
            sms_from=env.get("GATHER_SMS_FROM") or None,
        )


def admin_token_from_file() -> str:
    """The embedded default: one random token shared by every process through `var/admin-token`."""
    path = VAR_DIR / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write it whole under a private name, then link it into place: when several processes start at
        # once, the first link wins and no process can read a half-written (empty) token.
        draft = path.with_name(f".admin-token.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
