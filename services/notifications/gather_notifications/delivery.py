"""Getting a rendered message to its recipient: email by SMTP or as .eml files, SMS through a provider
(`file` or `twilio`). Every failure is raised as a DeliveryError that says whether retrying may help.

The files of the embedded default belong to their notification: an email is `<notification id>.eml`, an
SMS a line of sms.jsonl that names its notification, so that erasing an attendee can delete them
(`discard`)."""

from __future__ import annotations

import fcntl
import json
import smtplib
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from email.message import Message
from urllib.parse import unquote, urlparse

import urllib3

from gather_shared.config import VAR_DIR, Settings, smtp_starttls

EMAIL_DIR = VAR_DIR / "outbox" / "email"
SMS_FILE = VAR_DIR / "outbox" / "sms.jsonl"
TIMEOUT_SECONDS = 30


class DeliveryError(Exception):
    """`transient`: the same message may go through later (a 4xx SMTP reply, a lost connection, HTTP 429
    or 5xx); otherwise retrying cannot help (a rejected address, a refused request)."""

    def __init__(self, detail: str, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


# --- email ------------------------------------------------------------------------------------------


class Mailer:
    """Sends emails one after another over ONE SMTP connection, opened at the first send: connecting
    (and STARTTLS, and the login) cost more than a message, so a batch of messages shares them. After
    any failure the connection is dropped and the next send opens a new one. Use it as a context manager
    (it says QUIT at the end); it is not thread-safe: one per sending thread."""

    def __init__(self, settings: Settings) -> None:
        self.smtp_url = settings.smtp_url
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, message: Message, reference: str) -> None:
        """Send one email; `reference` (the notification id) names its file on the embedded default."""
        with _smtp_errors():
            if self.smtp_url is None:
                _write_eml(message, reference)
                return
            if self.client is not None:
                try:
                    self.client.send_message(message)
                    return
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    # The server dropped the connection kept from an earlier send (an idle timeout):
                    # that says nothing about this message, so it gets one try on a fresh connection.
                    self.close()
                except BaseException:
                    self.close()
                    raise
            self.client = _connect_smtp(self.smtp_url)
            try:
                self.client.send_message(message)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()  # a polite QUIT is not worth a failure: the messages were answered already


@contextmanager
def _smtp_errors() -> Iterator[None]:
    """Turns what smtplib raises into a DeliveryError that says whether a retry may help."""
    try:
        yield
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", transient=400 <= exc.smtp_code < 500
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            f"SMTP recipients refused: {exc.recipients}", transient=all(400 <= code < 500 for code in codes)
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise DeliveryError(f"SMTP connection: {exc}", transient=True) from exc
    except smtplib.SMTPException as exc:  # before OSError, its base class: these are refusals
        raise DeliveryError(f"SMTP: {exc}", transient=False) from exc
    except OSError as exc:
        raise DeliveryError(f"SMTP connection: {exc}", transient=True) from exc


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _write_eml(message: Message, reference: str) -> None:
    EMAIL_DIR.mkdir(parents=True, exist_ok=True)
    # Named by its notification: writing it again replaces it, never doubles it, and erasure finds it.
    path = EMAIL_DIR / f"{reference}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(message))
    tmp.rename(path)  # readers never see half a file


def _connect_smtp(smtp_url: str) -> smtplib.SMTP:
    """A connection ready to send: connected, STARTTLS if the URL asks for it, logged in if it has a user."""
    url = urlparse(smtp_url)
    host, port = url.hostname or "localhost", url.port
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port or 465, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(host, port or 25, timeout=TIMEOUT_SECONDS)
    try:
        if url.scheme == "smtp" and smtp_starttls(smtp_url):
            client.starttls(context=ssl.create_default_context())
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
    except BaseException:
        client.close()
        raise
    return client


# --- SMS --------------------------------------------------------------------------------------------


class SmsSender:
    """Sends SMS one after another through the configured provider. For `twilio` the calls share one
    connection pool, so they reuse a kept-alive connection (and its TLS handshake) instead of opening one
    each. urllib3 rather than requests: half the CPU per call (docs/benchmarks.md, "Measurements behind the
    code"), and a fan-out of reminders is CPU-bound. Use it as a context manager; it is not thread-safe: one
    per sending thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # No retries here: a failed call is retried by the sender, after its backoff (rules.retry_delay).
        self.http = urllib3.PoolManager(timeout=TIMEOUT_SECONDS, retries=False)

    def __enter__(self) -> SmsSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.clear()

    def send(self, to: str, body: str, reference: str) -> str | None:
        """Send one SMS; returns the provider's id for it when the provider reports delivery later.
        `reference` (the notification id) comes back with each delivery receipt."""
        if self.settings.sms_provider == "twilio":
            return self._send_twilio(to, body, reference)
        if self.settings.sms_provider != "file":
            raise DeliveryError(f"unknown GATHER_SMS_PROVIDER {self.settings.sms_provider!r}", transient=False)
        try:
            SMS_FILE.parent.mkdir(parents=True, exist_ok=True)
            with open(SMS_FILE, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)  # not in the middle of an erasure rewriting the file (discard)
                f.write(json.dumps({"to": to, "body": body, "notification": reference}) + "\n")
        except OSError as exc:
            raise DeliveryError(f"SMS file: {exc}", transient=True) from exc
        return None

    def _send_twilio(self, to: str, body: str, reference: str) -> str:
        """The Twilio Messages API: POST /2010-04-01/Accounts/{sid}/Messages.json, basic auth, a form."""
        settings = self.settings
        if not (settings.sms_account_sid and settings.sms_auth_token and settings.sms_from):
            raise DeliveryError(
                "twilio needs GATHER_SMS_ACCOUNT_SID, GATHER_SMS_AUTH_TOKEN and GATHER_SMS_FROM", transient=False
            )
        url = f"{settings.sms_base_url}/2010-04-01/Accounts/{settings.sms_account_sid}/Messages.json"
        try:
            response = self.http.request(
                "POST",
                url,
                encode_multipart=False,
                headers=urllib3.make_headers(basic_auth=f"{settings.sms_account_sid}:{settings.sms_auth_token}"),
                fields={
                    "To": to,
                    "From": settings.sms_from,
                    "Body": body,
                    "StatusCallback": f"{settings.notifications_url}/v1/sms/status?notification={reference}",
                },
            )
        except urllib3.exceptions.HTTPError as exc:
            raise DeliveryError(f"twilio: {type(exc).__name__}: {exc}", transient=True) from exc
        if response.status == 429 or response.status >= 500:
            raise DeliveryError(f"twilio HTTP {response.status}: {_text(response.data)[:300]}", transient=True)
        if response.status >= 400:
            raise DeliveryError(f"twilio HTTP {response.status}: {_text(response.data)[:300]}", transient=False)
        return response.json()["sid"]


# --- erasure ----------------------------------------------------------------------------------------


def discard(notification_ids: Iterable[object]) -> None:
    """Delete what the embedded default wrote for these notifications: their .eml files (named by the
    notification, see _write_eml; older names started with it too) and their lines of sms.jsonl. Harmless
    to repeat, and where nothing was written (SMTP, Twilio)."""
    ids = {str(notification_id) for notification_id in notification_ids}
    if not ids:
        return
    for notification_id in ids:
        for path in EMAIL_DIR.glob(f"{notification_id}*.eml"):
            path.unlink(missing_ok=True)
    try:
        sms_file = open(SMS_FILE, "r+")
    except FileNotFoundError:
        return
    with sms_file:
        # Rewritten in place under the lock the sender appends under: an append waiting for it lands
        # after the rewrite, at the new end of the same file.
        fcntl.flock(sms_file, fcntl.LOCK_EX)
        lines = sms_file.readlines()
        kept = [line for line in lines if _sms_notification(line) not in ids]
        if len(kept) < len(lines):
            sms_file.seek(0)
            sms_file.writelines(kept)
            sms_file.truncate()


def _sms_notification(line: str) -> str | None:
    try:
        return json.loads(line).get("notification")
    except (ValueError, AttributeError):
        return None
