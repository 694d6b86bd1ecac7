"""Settings, read from the environment. The names are fixed by the contract; one place reads them all."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from limits import parse_many

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
    # Rate limits (gather_shared.ratelimit), in the `limits` notation: "60/minute;600/hour" allows both.
    # Defaults a real community event never reaches; what each counts is in README's settings table.
    rate_limit_enabled: bool = True
    #: None: the service's own database; `redis://…` in production (docs/operations.md).
    rate_limit_storage_url: str | None = None
    rate_limit_per_address: str = "60/minute;600/hour"
    rate_limit_per_contact: str = "10/hour;30/day"
    rate_limit_per_event: str = "300/minute"
    rate_limit_per_key: str = "600/minute"
    rate_limit_admin: str = "60/minute"
    rate_limit_webhooks: str = "1200/minute"
    #: The proxies whose X-Forwarded-For names the client (addresses or networks); none by default.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, service: str) -> Settings:
        env = os.environ
        broker_url = broker_url_from(env)
        database_url = database_url_from(env, service)
        return cls(
            service=service,
            broker_url=broker_url,
            database_url=database_url,
            admin_token=env.get("GATHER_ADMIN_TOKEN") or secret_from_file("admin-token"),
            smtp_url=smtp_url(env.get("GATHER_SMTP_URL") or None),
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
            rate_limit_enabled=flag("GATHER_RATE_LIMIT_ENABLED", env.get("GATHER_RATE_LIMIT_ENABLED") or "true"),
            rate_limit_storage_url=env.get("GATHER_RATE_LIMIT_STORAGE_URL") or None,
            **{
                f"rate_limit_{name}": rate_limit(
                    f"GATHER_RATE_LIMIT_{name.upper()}", env, getattr(cls, f"rate_limit_{name}")
                )
                for name in RATE_LIMITS
            },
            trusted_proxies=trusted_proxies(env.get("GATHER_TRUSTED_PROXIES") or ""),
        )


def broker_url_from(env: Mapping[str, str]) -> str:
    """GATHER_BROKER_URL (the services read it through Settings; the operator's toolkit reads it alone)."""
    return env.get("GATHER_BROKER_URL") or "filesystem://"


def database_url_from(env: Mapping[str, str], service: str) -> str:
    """GATHER_DATABASE_URL for `service`: its `{service}` replaced by the service's name."""
    return (env.get("GATHER_DATABASE_URL") or "sqlite:///var/{service}.db").replace("{service}", service)


def smtp_url(value: str | None) -> str | None:
    """GATHER_SMTP_URL, checked at start: a user and password are sent only over TLS (`smtps://`, or
    `smtp://…?starttls=1`), never in clear text to whoever is on the path."""
    if value is None:
        return None
    url = urlsplit(value)
    if url.scheme not in ("smtp", "smtps"):
        raise SettingsError(f"GATHER_SMTP_URL: {url.scheme}:// is neither smtp:// nor smtps://")
    if url.username and url.scheme == "smtp" and not smtp_starttls(value):
        raise SettingsError(
            "GATHER_SMTP_URL: refusing to log in to an SMTP server over a plain connection; "
            "use smtps:// or add ?starttls=1"
        )
    return value


def smtp_starttls(value: str) -> bool:
    """Whether an smtp:// GATHER_SMTP_URL asks for STARTTLS (`?starttls=1`)."""
    return parse_qs(urlsplit(value).query).get("starttls", ["0"])[0].lower() in ("1", "true")


#: The GATHER_RATE_LIMIT_<NAME> settings that each hold a limit.
RATE_LIMITS = ("per_address", "per_contact", "per_event", "per_key", "admin", "webhooks")


def rate_limit(name: str, env: Mapping[str, str], default: str) -> str:
    """A limit in the `limits` notation, checked at start: a typo must not switch a limit off."""
    value = env.get(name) or default
    try:
        parse_many(value)
    except ValueError as exc:
        raise SettingsError(f"{name}: {value!r} is not a limit like '60/minute;600/hour'") from exc
    return value


def flag(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise SettingsError(f"{name}: {value!r} is neither true nor false")
    return value.lower() in ("true", "1")


def trusted_proxies(value: str) -> tuple[str, ...]:
    """GATHER_TRUSTED_PROXIES: addresses or networks (10.0.0.0/8), separated by commas."""
    proxies = tuple(part.strip() for part in value.split(",") if part.strip())
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise SettingsError(f"GATHER_TRUSTED_PROXIES: {proxy!r} is not an address or a network") from exc
    return proxies


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
